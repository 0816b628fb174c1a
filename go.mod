module github.com/certview-exporter/certview_exporter

go 1.26.8

require (
	github.com/go-kit/log v0.2.1
	github.com/jonboulle/clockwork v0.5.0
)

require github.com/go-logfmt/logfmt v0.5.1 // indirect
