// Package httpstatus names HTTP status codes without importing net/http, so
// that the root package and the policies, which classify status codes but
// speak no HTTP, do not pull an HTTP stack (and crypto/tls) into every
// program that uses one breaker.
package httpstatus

// The codes the failure classifier and the policies name.
const (
	RequestTimeout     = 408
	TooManyRequests    = 429
	BadGateway         = 502
	ServiceUnavailable = 503
	GatewayTimeout     = 504
	Unauthorized       = 401
	Forbidden          = 403
)

// Text returns the reason phrase of code as net/http's StatusText spells it,
// or "" for a code it does not know. A test holds the two equal.
func Text(code int) string {
	if code < 0 || code >= len(texts) {
		return ""
	}
	return texts[code]
}

// texts is indexed by code.
var texts = [...]string{
	100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",

	200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
	205: "Reset Content", 206: "Partial Content", 207: "Multi-Status", 208: "Already Reported", 226: "IM Used",

	300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
	305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",

	400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
	405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
	409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed", 413: "Request Entity Too Large",
	414: "Request URI Too Long", 415: "Unsupported Media Type", 416: "Requested Range Not Satisfiable",
	417: "Expectation Failed", 418: "I'm a teapot", 421: "Misdirected Request", 422: "Unprocessable Entity",
	423: "Locked", 424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required",
	429: "Too Many Requests", 431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",

	500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
	504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates",
	507: "Insufficient Storage", 508: "Loop Detected", 510: "Not Extended", 511: "Network Authentication Required",
}
