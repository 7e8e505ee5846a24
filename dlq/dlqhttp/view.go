package dlqhttp

import (
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-go/sluice/dlq"
)

// The keys of a queued HTTP request in dlq.Message.Headers. A proxy stores
// the request under them and replays it from them; MessageView reads them.
// Request headers are stored under KeyHeaderPrefix + their canonical name,
// several values joined by a newline (which no header value contains).
const (
	KeyMethod       = ":method" // the request's method
	KeyURI          = ":uri"    // its target, as RequestURI
	KeyHost         = ":host"   // its Host
	KeyRemote       = ":remote" // the client's address
	KeyProto        = ":proto"  // "http" or "https"
	KeyHeaderPrefix = "h:"      // before each header's canonical name
)

// RedactedValue replaces the value of a credential header in a MessageView:
// the header is stored so that the replay is authorised, but is not for an
// operator's eyes.
const RedactedValue = "REDACTED"

// redacted reports whether the header name (canonical) holds a credential.
func redacted(name string) bool {
	switch name {
	case "Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Auth-Token":
		return true
	}
	return false
}

// MessageView is a dead-letter message as the API shows it: the queued
// request (credentials redacted) and its replay history.
type MessageView struct {
	ID    string `json:"id"`
	Queue string `json:"queue"`
	// State is "ready" or "parked".
	State  string `json:"state"`
	Method string `json:"method,omitempty"`
	URI    string `json:"uri,omitempty"`
	Host   string `json:"host,omitempty"`
	// Headers are the request's headers, credentials as RedactedValue.
	Headers   map[string][]string `json:"headers,omitempty"`
	BodyBytes int                 `json:"body_bytes"`
	// Body is the body when it was asked for (body=1) and is UTF-8;
	// BodyBase64 holds it otherwise. Both are nil when it was not asked for.
	Body       *string `json:"body,omitempty"`
	BodyBase64 *string `json:"body_base64,omitempty"`
	// Attempts counts every attempt, those before queueing and one per
	// failed replay; Replays the failed replays.
	Attempts     int       `json:"attempts"`
	Replays      int       `json:"replays"`
	Enqueued     time.Time `json:"enqueued"`
	FirstFailure time.Time `json:"first_failure"`
	LastFailure  time.Time `json:"last_failure"`
	NextReplay   time.Time `json:"next_replay"`
	LastError    string    `json:"last_error,omitempty"`
}

// ViewOf returns the view of m, with its body when withBody is set.
func ViewOf(m dlq.Message, withBody bool) MessageView {
	v := MessageView{
		ID:           m.ID.String(),
		Queue:        m.Queue,
		State:        m.State.String(),
		Method:       m.Headers[KeyMethod],
		URI:          m.Headers[KeyURI],
		Host:         m.Headers[KeyHost],
		BodyBytes:    len(m.Payload),
		Attempts:     m.Attempts,
		Replays:      m.Replays,
		Enqueued:     m.Enqueued(),
		FirstFailure: m.FirstFailure,
		LastFailure:  m.LastFailure,
		NextReplay:   m.NextReplay,
		LastError:    m.LastError,
	}
	for k, val := range m.Headers {
		name, ok := strings.CutPrefix(k, KeyHeaderPrefix)
		if !ok {
			continue
		}
		if v.Headers == nil {
			v.Headers = map[string][]string{}
		}
		if redacted(name) {
			v.Headers[name] = []string{RedactedValue}
			continue
		}
		v.Headers[name] = strings.Split(val, "\n")
	}
	if withBody {
		if utf8.Valid(m.Payload) {
			s := string(m.Payload)
			v.Body = &s
		} else {
			s := base64.StdEncoding.EncodeToString(m.Payload)
			v.BodyBase64 = &s
		}
	}
	return v
}

// ListResponse is the answer to GET /dlq: a page of messages, oldest
// first, and the after= of the next page (empty at the end).
type ListResponse struct {
	Messages []MessageView `json:"messages"`
	Next     string        `json:"next"`
}

// QueueView is one queue in GET /dlq/stats: its depth and age in the store
// and what its replayer has done since it started.
type QueueView struct {
	Queue        string    `json:"queue"`
	Ready        int64     `json:"ready"`
	Parked       int64     `json:"parked"`
	OldestReady  time.Time `json:"oldest_ready,omitzero"`
	OldestParked time.Time `json:"oldest_parked,omitzero"`
	// Replaying reports whether the queue has a replayer.
	Replaying bool  `json:"replaying"`
	Replayed  int64 `json:"replayed"`
	Failed    int64 `json:"failed"`
	Parks     int64 `json:"parked_by_replay"`
	Released  int64 `json:"released"`
	InFlight  int64 `json:"in_flight"`
}

// StatsResponse is the answer to GET /dlq/stats, queues sorted by name.
type StatsResponse struct {
	Queues []QueueView `json:"queues"`
}

// ReplayOneResponse is the answer to POST /dlq/{id}/replay when the replay
// ran: Outcome "replayed" (200) or "failed" with the Error (502).
type ReplayOneResponse struct {
	ID      string `json:"id"`
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// ReplayView is what POST /dlq/replay did to one queue.
type ReplayView struct {
	Queue    string `json:"queue"`
	Replayed int    `json:"replayed"`
	Failed   int    `json:"failed"`
	Parked   int    `json:"parked"`
	Released int    `json:"released"`
	Skipped  int    `json:"skipped"`
	// Error says why the replay of the queue stopped, if it did.
	Error string `json:"error,omitempty"`
}

// ReplayResponse is the answer to POST /dlq/replay, queues in name order.
type ReplayResponse struct {
	Results []ReplayView `json:"results"`
}

// ErrorResponse is the body of every answer that is not a success.
type ErrorResponse struct {
	Error string `json:"error"`
}
