package dashboard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sluice-go/sluice/dashboard"
)

// The dashboard mounted on an admin mux next to the API it polls, with the
// root redirecting to it.
func Example() {
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", dashboard.Handler(dashboard.Options{}))
	mux.Handle("GET /{$}", http.RedirectHandler("/dashboard/", http.StatusFound))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"score": 1, "status": "healthy"}`) // a health.Monitor's JSONHandler in a real server
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
	fmt.Println(res.Request.URL.Path, res.StatusCode, res.Header.Get("Content-Type"))
	csp, _, _ := strings.Cut(res.Header.Get("Content-Security-Policy"), ";")
	fmt.Println(csp)
	// Output:
	// /dashboard/ 200 text/html; charset=utf-8
	// default-src 'self'
}
