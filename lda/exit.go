package lda

import (
	"context"
	"errors"
	"fmt"
)

// Exit statuses from sysexits.h, as MTAs interpret them. Exim defers
// (retries) on the codes listed in its pipe transport's temp_errors;
// Postfix's pipe(8) and local(8) defer on EX_TEMPFAIL and bounce on the
// other non-zero codes.
const (
	ExitOK       = 0  // delivered, discarded or redirected on purpose
	ExitUsage    = 64 // EX_USAGE: bad command line (no recipient...)
	ExitNoInput  = 66 // EX_NOINPUT: -p file cannot be read
	ExitNoUser   = 67 // EX_NOUSER: unknown recipient
	ExitSoftware = 70 // EX_SOFTWARE: internal error
	ExitTempFail = 75 // EX_TEMPFAIL: anything temporary; the MTA retries
	ExitNoPerm   = 77 // EX_NOPERM: rejected by the script with -e (as dovecot-lda)
	// EX_CONFIG: not used by sieve-lda, which reports an unusable
	// configuration as ExitTempFail (Postfix bounces on 78).
	ExitConfig = 78
)

// Error is a delivery failure with the exit status the MTA must see and a
// one-line reason for its log and bounce.
type Error struct {
	Code   int
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Reason, e.Err)
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(code int, err error, format string, args ...any) *Error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, args...), Err: err}
}

// ExitCode maps an error from Deliver (or from setting it up) to a sysexits
// status: nil is 0, an *Error carries its own, anything else is temporary
// (75): when in doubt the MTA keeps the message and retries, so nothing is
// lost.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return ExitTempFail
	}
	return ExitTempFail
}
