package abi

// ErrorCode is a machine-readable reason carried in Error.Code.
type ErrorCode string

// Error codes returned by host functions (in a response's "error") and used by the host
// to classify failed calls.
const (
	// ErrCodeCapabilityDenied: the plugin holds no grant for the function, or the
	// arguments are outside the grant (e.g. an event type it may not emit).
	ErrCodeCapabilityDenied ErrorCode = "capability_denied"
	// ErrCodeInvalidArgument: the request body is malformed or a field is invalid.
	ErrCodeInvalidArgument ErrorCode = "invalid_argument"
	// ErrCodeNotFound: the key or resource does not exist.
	ErrCodeNotFound ErrorCode = "not_found"
	// ErrCodeLimitExceeded: a size, rate or quota limit was hit.
	ErrCodeLimitExceeded ErrorCode = "limit_exceeded"
	// ErrCodeUnavailable: the backing service (store, provider) is temporarily unavailable.
	ErrCodeUnavailable ErrorCode = "unavailable"
	// ErrCodeUnsupported: the host does not implement the function or option.
	ErrCodeUnsupported ErrorCode = "unsupported"
	// ErrCodeInternal: an unexpected host failure; the message is deliberately generic.
	ErrCodeInternal ErrorCode = "internal"
	// ErrCodeABIMismatch: the request or manifest speaks another ABI major version.
	ErrCodeABIMismatch ErrorCode = "abi_mismatch"
	// ErrCodeHookNotImplemented: the plugin was called for a hook it does not implement.
	ErrCodeHookNotImplemented ErrorCode = "hook_not_implemented"
	// ErrCodePluginPanic: the plugin's handler panicked (recovered by the guest SDK).
	ErrCodePluginPanic ErrorCode = "plugin_panic"
	// ErrCodePluginError: the plugin's handler returned an error.
	ErrCodePluginError ErrorCode = "plugin_error"
)

// ErrorCodes lists every error code of ABI v1.
func ErrorCodes() []ErrorCode {
	return []ErrorCode{
		ErrCodeCapabilityDenied, ErrCodeInvalidArgument, ErrCodeNotFound, ErrCodeLimitExceeded,
		ErrCodeUnavailable, ErrCodeUnsupported, ErrCodeInternal, ErrCodeABIMismatch,
		ErrCodeHookNotImplemented, ErrCodePluginPanic, ErrCodePluginError,
	}
}

// Error is the "error" object of a host-function response. It implements error, so a guest
// can return it directly and a caller can test its code with errors.As.
type Error struct {
	// Code classifies the failure.
	Code ErrorCode `json:"code"`
	// Message is a human-readable explanation safe to show to the plugin.
	Message string `json:"message"`
}

// Error returns "code: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, &abi.Error{Code: abi.ErrCodeCapabilityDenied}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// NewError returns an *Error with the given code and message.
func NewError(code ErrorCode, message string) *Error {
	return &Error{Code: code, Message: message}
}
