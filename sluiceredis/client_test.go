package sluiceredis_test

import (
	"testing"

	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/sluiceredis"
)

func TestNewClient(t *testing.T) {
	srv := redistest.Start(t)
	c, err := sluiceredis.NewClient(srv.URL() + "/2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Options().ContextTimeoutEnabled || c.Options().DB != 2 {
		t.Fatalf("options = %+v, want context deadlines honoured and DB 2", c.Options())
	}
	if err := c.Ping(bg).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := sluiceredis.NewClient("http://nope"); err == nil {
		t.Fatal("NewClient accepted an http URL")
	}
}
