package proxy

import (
	"fmt"
	"net/http"
	goruntime "runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/jsonhttp"
)

// The profiling endpoints under /debug/pprof/ of the admin API, in the
// formats `go tool pprof` and `go tool trace` read. They are written here
// rather than taken from net/http/pprof, whose import registers the same
// handlers on http.DefaultServeMux of every program that links the proxy.

// maxProfileSeconds bounds a CPU profile or trace.
const maxProfileSeconds = 300

func pprofRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/{$}", pprofIndex)
	mux.HandleFunc("GET /debug/pprof/profile", pprofCPU)
	mux.HandleFunc("GET /debug/pprof/trace", pprofTrace)
	mux.HandleFunc("GET /debug/pprof/{name}", pprofNamed)
}

// pprofIndex lists the profiles.
func pprofIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	profiles := pprof.Profiles()
	slices.SortFunc(profiles, func(a, b *pprof.Profile) int { return strings.Compare(a.Name(), b.Name()) })
	fmt.Fprintln(w, "sluice admin: profiles (go tool pprof <admin>/debug/pprof/<name>)")
	for _, p := range profiles {
		fmt.Fprintf(w, "%-14s %d\n", p.Name(), p.Count())
	}
	fmt.Fprintln(w, "profile        CPU profile, ?seconds=30")
	fmt.Fprintln(w, "trace          execution trace, ?seconds=1")
}

// pprofNamed writes one runtime profile: heap, goroutine, allocs, block,
// mutex, threadcreate. ?debug=1 or 2 gives text; ?gc=1 runs a GC first.
func pprofNamed(w http.ResponseWriter, r *http.Request) {
	p := pprof.Lookup(r.PathValue("name"))
	if p == nil {
		jsonhttp.Error(w, http.StatusNotFound, "no such profile; GET /debug/pprof/ lists them")
		return
	}
	debug, _ := strconv.Atoi(r.URL.Query().Get("debug"))
	if r.URL.Query().Get("gc") == "1" {
		goruntime.GC()
	}
	if debug > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+p.Name()+`"`)
	}
	_ = p.WriteTo(w, debug)
}

// profileSeconds reads ?seconds= (def if absent) and lets the answer be
// written for that long past the admin server's write timeout.
func profileSeconds(w http.ResponseWriter, r *http.Request, def int) (time.Duration, bool) {
	sec := def
	if v := r.URL.Query().Get("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxProfileSeconds {
			jsonhttp.Error(w, http.StatusBadRequest, "seconds must be 1 to "+strconv.Itoa(maxProfileSeconds))
			return 0, false
		}
		sec = n
	}
	d := time.Duration(sec) * time.Second
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + 30*time.Second))
	return d, true
}

// pprofCPU writes a CPU profile of ?seconds= (30 by default).
func pprofCPU(w http.ResponseWriter, r *http.Request) {
	d, ok := profileSeconds(w, r, 30)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="profile"`)
	if err := pprof.StartCPUProfile(w); err != nil {
		w.Header().Del("Content-Disposition")
		jsonhttp.Error(w, http.StatusConflict, "a CPU profile is being taken already: "+err.Error())
		return
	}
	waitOrDone(r, d)
	pprof.StopCPUProfile()
}

// pprofTrace writes an execution trace of ?seconds= (1 by default).
func pprofTrace(w http.ResponseWriter, r *http.Request) {
	d, ok := profileSeconds(w, r, 1)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="trace"`)
	if err := trace.Start(w); err != nil {
		w.Header().Del("Content-Disposition")
		jsonhttp.Error(w, http.StatusConflict, "a trace is being taken already: "+err.Error())
		return
	}
	waitOrDone(r, d)
	trace.Stop()
}

// waitOrDone waits d, or until the client goes away.
func waitOrDone(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}
