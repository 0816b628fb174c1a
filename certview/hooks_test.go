package certview

import (
	"fmt"
	"testing"
)

func TestJoinHooksCallsEach(t *testing.T) {
	var got []string
	a := Hooks{Request: func(RequestEvent) { got = append(got, "a.request") }, Wait: func(WaitEvent) { got = append(got, "a.wait") }}
	b := Hooks{Request: func(RequestEvent) { got = append(got, "b.request") }, Skip: func(SkipEvent) { got = append(got, "b.skip") }}
	j := JoinHooks(a, Hooks{}, b)
	j.request(RequestEvent{})
	j.wait(WaitEvent{})
	j.skip(SkipEvent{})
	j.version(VersionEvent{}) // nobody listens: no call, no panic
	if want := "[a.request b.request a.wait b.skip]"; fmt.Sprint(got) != want {
		t.Fatalf("calls %v, want %s", got, want)
	}
}
