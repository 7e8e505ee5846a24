package jsonhttp

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, http.StatusCreated, map[string]int{"n": 1})
	if rec.Code != http.StatusCreated {
		t.Errorf("code %d, want 201", rec.Code)
	}
	h := rec.Header()
	if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", h)
	}
	if n, _ := strconv.Atoi(h.Get("Content-Length")); n != rec.Body.Len() {
		t.Errorf("Content-Length %s, body %d bytes", h.Get("Content-Length"), rec.Body.Len())
	}
	if rec.Body.String() != "{\n  \"n\": 1\n}\n" {
		t.Errorf("body %q", rec.Body.String())
	}
}

func TestError(t *testing.T) {
	rec := httptest.NewRecorder()
	Error(rec, http.StatusNotFound, "no such message")
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got["error"] != "no such message" || len(got) != 1 {
		t.Errorf("body %q (%v), want {\"error\": \"no such message\"}", rec.Body.String(), err)
	}
	if rec.Code != http.StatusNotFound {
		t.Errorf("code %d", rec.Code)
	}
}

func TestWriteUnencodable(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, http.StatusOK, math.Inf(1))
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") == "application/json" {
		t.Errorf("code %d, type %q: want a plain 500", rec.Code, rec.Header().Get("Content-Type"))
	}
}
