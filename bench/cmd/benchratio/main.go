// Command benchratio checks `go test -bench` output against ratio targets,
// so every figure in docs/benchmarks.md can be rerun and judged the same
// way. It reads the output file and one or more targets:
//
//	Case:a/b<=R      median ns/op of BenchmarkCase/a over BenchmarkCase/b at -cpu 1
//	Case:a@allocs==0 every run of BenchmarkCase/a reports 0 allocs/op
//	Case:a@par<=R    median ns/op at the highest -cpu over the -cpu 1 median
//
// It prints one line per target and exits 1 when a target is missed or a
// benchmark is missing, 2 on a usage error.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: benchratio FILE TARGET...  (TARGET: Case:a/b<=R, Case:a@allocs==0, Case:a@par<=R)")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(2)
	}
	runs, err := parse(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(2)
	}
	failed := false
	for _, spec := range os.Args[2:] {
		line, ok, err := check(runs, spec)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchratio:", err)
			os.Exit(2)
		}
		mark := "ok  "
		if !ok {
			mark, failed = "MISS", true
		}
		fmt.Printf("%s %s\n", mark, line)
	}
	if failed {
		os.Exit(1)
	}
}

// run is one line of benchmark output.
type run struct {
	ns     float64
	allocs float64 // -1 when the line has no allocs/op
}

// key names a benchmark at one -cpu value.
type key struct {
	name string // without the "Benchmark" prefix and the -N suffix
	cpu  int
}

var lineRE = regexp.MustCompile(`^Benchmark(\S+?)(?:-(\d+))?\s+\d+\s+([0-9.]+) ns/op(.*)$`)
var allocsRE = regexp.MustCompile(`([0-9.]+) allocs/op`)

// parse collects every run of every benchmark in r.
func parse(r io.Reader) (map[key][]run, error) {
	runs := map[key][]run{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		cpu := 1
		if m[2] != "" {
			cpu, _ = strconv.Atoi(m[2])
		}
		ns, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			return nil, fmt.Errorf("bad ns/op in %q", sc.Text())
		}
		ru := run{ns: ns, allocs: -1}
		if a := allocsRE.FindStringSubmatch(m[4]); a != nil {
			ru.allocs, _ = strconv.ParseFloat(a[1], 64)
		}
		k := key{m[1], cpu}
		runs[k] = append(runs[k], ru)
	}
	return runs, sc.Err()
}

func median(rs []run) float64 {
	ns := make([]float64, len(rs))
	for i, r := range rs {
		ns[i] = r.ns
	}
	sort.Float64s(ns)
	n := len(ns)
	if n%2 == 1 {
		return ns[n/2]
	}
	return (ns[n/2-1] + ns[n/2]) / 2
}

var specRE = regexp.MustCompile(`^([^:]+):([^/@]+)(?:/([^<=]+)<=([0-9.]+)|@allocs==([0-9.]+)|@par<=([0-9.]+))$`)

// check judges one target against runs, returning a line to print.
func check(runs map[key][]run, spec string) (string, bool, error) {
	m := specRE.FindStringSubmatch(spec)
	if m == nil {
		return "", false, fmt.Errorf("target %q: want Case:a/b<=R, Case:a@allocs==N or Case:a@par<=R", spec)
	}
	bench, a := m[1], m[1]+"/"+m[2]
	get := func(name string, cpu int) ([]run, error) {
		rs := runs[key{name, cpu}]
		if len(rs) == 0 {
			return nil, fmt.Errorf("no runs of Benchmark%s at -cpu %d", name, cpu)
		}
		return rs, nil
	}
	switch {
	case m[3] != "":
		limit, _ := strconv.ParseFloat(m[4], 64)
		ra, err := get(a, 1)
		if err != nil {
			return spec + ": " + err.Error(), false, nil
		}
		rb, err := get(bench+"/"+m[3], 1)
		if err != nil {
			return spec + ": " + err.Error(), false, nil
		}
		ratio := median(ra) / median(rb)
		return fmt.Sprintf("%s: %.3f (%.1f / %.1f ns/op)", spec, ratio, median(ra), median(rb)), ratio <= limit, nil
	case m[5] != "":
		want, _ := strconv.ParseFloat(m[5], 64)
		found := false
		for k, rs := range runs {
			if k.name != a {
				continue
			}
			for _, r := range rs {
				found = true
				if r.allocs != want {
					return fmt.Sprintf("%s: a run at -cpu %d reports %v allocs/op", spec, k.cpu, r.allocs), false, nil
				}
			}
		}
		if !found {
			return spec + ": no runs of Benchmark" + a, false, nil
		}
		return spec, true, nil
	default:
		limit, _ := strconv.ParseFloat(m[6], 64)
		top := 1
		for k := range runs {
			if k.name == a && k.cpu > top {
				top = k.cpu
			}
		}
		if top == 1 {
			return spec + ": needs runs at -cpu 1 and a higher -cpu", false, nil
		}
		one, err := get(a, 1)
		if err != nil {
			return spec + ": " + err.Error(), false, nil
		}
		ratio := median(runs[key{a, top}]) / median(one)
		return fmt.Sprintf("%s: cpu%d/cpu1 = %.3f", spec, top, ratio), ratio <= limit, nil
	}
}
