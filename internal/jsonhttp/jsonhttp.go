// Package jsonhttp writes the JSON answers of the admin API, so that every
// handler mounted on it (the DLQ's, the admin mux's own) answers alike:
// indented, never cached, with a Content-Length.
package jsonhttp

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Write answers v as indented JSON with the status code, marked never to be
// cached. A value that cannot be encoded is a 500 with a plain-text body.
func Write(w http.ResponseWriter, code int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "cannot encode the answer", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

// Error answers {"error": msg} with the status code.
func Error(w http.ResponseWriter, code int, msg string) {
	Write(w, code, struct {
		Error string `json:"error"`
	}{msg})
}
