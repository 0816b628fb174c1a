package poll

import (
	"context"
	"errors"
	"net"

	"github.com/certview-exporter/certview_exporter/certview"
)

// failureReason puts an error in one of a few bounded classes, for a metric label.
func failureReason(err error) string {
	var authErr *certview.AuthError
	var thrErr *certview.ThrottledError
	var apiErr *certview.APIError
	var pageErr *certview.PageError
	var netErr net.Error
	switch {
	case errors.As(err, &authErr):
		return "auth"
	case errors.As(err, &thrErr):
		return "throttled"
	case errors.As(err, &apiErr) && apiErr.Status >= 500:
		return "http_5xx"
	case errors.As(err, &apiErr):
		return "http_4xx"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout(),
		errors.As(err, new(*StallError)), errors.As(err, new(*TimeoutError)):
		return "timeout"
	case errors.Is(err, certview.ErrTooManyPages), errors.As(err, new(*certview.PageLimitError)),
		errors.As(err, new(*certview.RepeatedPageError)):
		return "paging"
	case errors.As(err, &pageErr):
		return "transport"
	}
	return "other"
}
