package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Loader reads configuration files. The zero Loader, which Load and Parse
// use, resolves ${NAME} from the process environment.
type Loader struct {
	// LookupEnv resolves ${NAME} references. If nil, os.LookupEnv.
	LookupEnv func(name string) (string, bool)
}

// Load reads and parses the configuration file at path. See Parse.
func Load(path string) (*Config, error) { return Loader{}.Load(path) }

// Parse parses a configuration. filename is used only in error messages.
// On failure the error is an Errors holding every problem found, each with
// its file, line, column and field; the Config is then nil.
func Parse(filename string, data []byte) (*Config, error) { return Loader{}.Parse(filename, data) }

// Load reads and parses the configuration file at path. A file that cannot
// be read gives the *fs.PathError, wrapped; anything else is as for Parse.
func (l Loader) Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return l.Parse(path, data)
}

// Parse parses a configuration: it decodes the YAML, expands ${NAME}
// references in scalar values, applies defaults, and validates every value
// and cross-reference. On failure the error is an Errors holding every
// problem found, and the Config is nil.
func (l Loader) Parse(filename string, data []byte) (*Config, error) {
	return l.parse(filename, data, false)
}

// ParsePolicies parses a file in the configuration's schema for its named
// policies, as the simulator reads them: like Parse, except that the file
// may leave the routes key out, so that a file of policies alone is valid.
// Every section present is decoded and checked as Parse checks it, routes
// included, and positions in errors are the file's own. A file that
// defines no policies gives an empty map.
func (l Loader) ParsePolicies(filename string, data []byte) (map[string]Policy, error) {
	c, err := l.parse(filename, data, true)
	if err != nil {
		return nil, err
	}
	return c.Policies, nil
}

// parse is Parse; policiesOnly lets a file leave routes out.
func (l Loader) parse(filename string, data []byte, policiesOnly bool) (*Config, error) {
	d := &decoder{file: filename, lookup: l.LookupEnv, env: map[string]string{}, policiesOnly: policiesOnly}
	if d.lookup == nil {
		d.lookup = os.LookupEnv
	}
	cfg := defaultConfig()
	if root, ok := d.document(data); ok {
		d.config(root, &cfg)
	}
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, dedupe(d.errs)
	}
	if len(d.env) > 0 {
		cfg.env = d.env
	}
	return &cfg, nil
}

// decoder turns YAML nodes into Config values, collecting errors instead of
// stopping at the first. Every method that decodes a value takes the node and
// the dotted field path, and on a bad value records an error and returns the
// zero value.
type decoder struct {
	file   string
	lookup func(string) (string, bool)
	errs   Errors
	env    map[string]string // field path → text before ${} expansion
	work   int               // nodes visited, aliases followed each time
	// policiesOnly accepts a document without routes (ParsePolicies).
	policiesOnly bool
}

// maxWork bounds the nodes a decoder visits. Aliases and merge keys let a
// small file name exponentially many nodes (YAML's "billion laughs"); no
// real configuration comes near this.
const maxWork = 100_000

// spend counts k nodes visited at n, and reports false once the budget is
// spent, recording the error the first time.
func (d *decoder) spend(n *yaml.Node, k int) bool {
	if d.work > maxWork {
		return false
	}
	d.work += k
	if d.work > maxWork {
		d.errorf(n, "", "the document expands to more than %d values through aliases and merge keys", maxWork)
		return false
	}
	return true
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	line, col := 1, 0
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	d.errs = append(d.errs, Error{File: d.file, Line: line, Column: col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// document parses data as exactly one YAML document and returns its root
// node, which is nil for an empty file.
func (d *decoder) document(data []byte) (root *yaml.Node, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		d.syntaxError(err, data)
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.errorf(&extra, "", "a config file holds one YAML document; found a second one here")
		return nil, false
	case !errors.Is(err, io.EOF):
		d.syntaxError(err, data)
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	return doc.Content[0], true
}

var (
	yamlLineRE   = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// syntaxError records a YAML parse error. The YAML library reports most
// with a line number in the text; for the few that carry none, the position
// is found in data, falling back to line 1.
func (d *decoder) syntaxError(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	n := &yaml.Node{Line: 1}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if line, err := strconv.Atoi(m[1]); err == nil && line > 0 {
			if parserError(m[2]) {
				// The YAML parser (unlike its scanner) reports the 0-based
				// line of the construct it was in; make it 1-based and keep
				// it inside the file.
				line = min(line+1, max(1, bytes.Count(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))+1))
			}
			n.Line, msg = line, m[2]
			if tl, tc, ok := indentTab(data, line, m[2]); ok {
				n.Line, n.Column, msg = tl, tc, "a tab in the indentation: YAML does not allow tabs for indentation; use spaces"
			}
		}
	} else if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			n.Line, n.Column = position(data, i)
		}
	} else if i := badByte(data); i >= 0 {
		n.Line, n.Column = position(data, i)
	}
	d.errorf(n, "", "invalid YAML: %s", msg)
}

// indentTab finds the tab behind a YAML scanner error about line: the
// line's own indentation for "cannot start any token" (which other
// characters cause too), and the first indented line from line on for the
// errors that name a tab, whose line is where the enclosing value began.
func indentTab(data []byte, line int, msg string) (tabLine, tabCol int, ok bool) {
	var last int // the last line the tab may be on
	switch msg {
	case "found character that cannot start any token":
		last = line
	case "found a tab character that violates indentation", "found a tab character where an indentation space is expected":
		last = math.MaxInt
	default:
		return 0, 0, false
	}
	for i, text := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		if n > last {
			break
		}
		indent := len(text) - len(bytes.TrimLeft(text, " \t"))
		if col := bytes.IndexByte(text[:indent], '\t'); n >= line && col >= 0 {
			return n, col + 1, true // indentation is ASCII: bytes are columns
		}
	}
	return 0, 0, false
}

// parserError reports whether a YAML error message comes from the parser
// rather than the scanner (see parserc.go in go.yaml.in/yaml/v3).
func parserError(msg string) bool {
	return strings.HasPrefix(msg, "did not find expected ',' or") ||
		slices.Contains([]string{
			"did not find expected '-' indicator",
			"did not find expected <document start>",
			"did not find expected <stream-start>",
			"did not find expected key",
			"did not find expected node content",
			"found duplicate %YAML directive",
			"found duplicate %TAG directive",
			"found incompatible YAML document",
			"found undefined tag handle",
		}, msg)
}

// position returns the 1-based line and column of byte offset i.
func position(data []byte, i int) (line, col int) {
	line = 1 + bytes.Count(data[:i], []byte("\n"))
	col = 1 + utf8.RuneCount(data[bytes.LastIndexByte(data[:i], '\n')+1:i])
	return line, col
}

// badByte returns the offset of the first byte YAML rejects outright
// (invalid UTF-8 or a control character), or -1.
func badByte(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return i
		}
		i += size
	}
	return -1
}

// dedupe drops errors identical to the one before (sorted input); an anchor
// merged into several places can otherwise report the same problem twice.
func dedupe(es Errors) Errors {
	out := es[:0]
	for i, e := range es {
		if i > 0 && e == es[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}

// join appends a key to a field path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// describe names what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return "an empty value"
	case n.Kind == yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "an unexpected node"
}

type entry struct {
	key          string
	keyNode, val *yaml.Node
}

// maxMergeDepth bounds nested merge keys; anchors can form cycles.
const maxMergeDepth = 8

// entries returns the key/value pairs of the mapping n with merge keys (<<)
// resolved: a key written in the mapping overrides a merged one, and among
// merged mappings the first listed wins. It reports duplicate and
// non-scalar keys, and returns ok false if n is not a mapping.
func (d *decoder) entries(n *yaml.Node, path string, depth int) (es []entry, ok bool) {
	m := resolve(n)
	if m == nil || m.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping, got %s", describe(m))
		return nil, false
	}
	if !d.spend(n, 1+len(m.Content)/2) {
		return nil, false
	}
	if depth > maxMergeDepth {
		d.errorf(n, path, "merge keys (<<) nested too deeply")
		return nil, false
	}
	at := map[string]int{}
	var merged []entry
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		kr := resolve(k)
		if kr.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain strings, got %s", describe(kr))
			continue
		}
		if kr.Tag == "!!merge" {
			merged = append(merged, d.mergeSources(v, path, depth)...)
			continue
		}
		if j, dup := at[kr.Value]; dup {
			d.errorf(k, join(path, kr.Value), "duplicate key (first at line %d)", es[j].keyNode.Line)
			continue
		}
		at[kr.Value] = len(es)
		es = append(es, entry{kr.Value, k, v})
	}
	for _, e := range merged {
		if _, dup := at[e.key]; !dup {
			at[e.key] = len(es)
			es = append(es, e)
		}
	}
	return es, true
}

// mergeSources returns the entries a merge key's value brings in: one
// mapping or a list of them.
func (d *decoder) mergeSources(v *yaml.Node, path string, depth int) []entry {
	r := resolve(v)
	if r.Kind == yaml.SequenceNode {
		var out []entry
		for _, item := range r.Content {
			if ri := resolve(item); ri.Kind != yaml.MappingNode {
				d.errorf(item, path, "merge key (<<) wants a mapping or a list of mappings, got %s", describe(ri))
				continue
			}
			es, _ := d.entries(item, path, depth+1)
			out = append(out, es...)
		}
		return out
	}
	if r.Kind != yaml.MappingNode {
		d.errorf(v, path, "merge key (<<) wants a mapping or a list of mappings, got %s", describe(r))
		return nil
	}
	es, _ := d.entries(v, path, depth+1)
	return es
}

// fields maps the keys of a mapping to their decoders.
type fields map[string]func(v *yaml.Node, path string)

// mapping decodes the mapping n with fs, reporting unknown keys, and returns
// the value node of each key present (nil if n is not a mapping).
func (d *decoder) mapping(n *yaml.Node, path string, fs fields) map[string]*yaml.Node {
	es, ok := d.entries(n, path, 0)
	if !ok {
		return nil
	}
	seen := make(map[string]*yaml.Node, len(es))
	for _, e := range es {
		p := join(path, e.key)
		f, known := fs[e.key]
		if !known {
			d.errorf(e.keyNode, p, "unknown key%s", suggest(e.key, fs))
			continue
		}
		seen[e.key] = e.val
		f(e.val, p)
	}
	return seen
}

// suggest returns a hint naming the known key closest to key, or listing
// them all when none is close.
func suggest(key string, fs fields) string {
	names := slices.Sorted(maps.Keys(fs))
	if best := closest(key, names); best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return " (want one of " + strings.Join(names, ", ") + ")"
}

// closest returns the name in sorted names nearest to s in edit distance,
// if it is near enough to be a likely typo, or "".
func closest(s string, names []string) string {
	best, bestDist := "", len(s)/3+1
	for _, name := range names {
		if dist := editDistance(s, name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sequence calls each for every item of the list n and returns its length,
// or -1 if n is not a list.
func (d *decoder) sequence(n *yaml.Node, path string, each func(i int, v *yaml.Node, p string)) int {
	r := resolve(n)
	if r == nil || r.Kind != yaml.SequenceNode {
		hint := ""
		if r != nil && r.Kind == yaml.ScalarNode && r.Tag != "!!null" {
			hint = fmt.Sprintf(" (write [%s])", r.Value)
		}
		d.errorf(n, path, "want a list, got %s%s", describe(r), hint)
		return -1
	}
	if !d.spend(n, 1+len(r.Content)) {
		return -1
	}
	for i, item := range r.Content {
		each(i, item, index(path, i))
	}
	return len(r.Content)
}

// text returns a scalar's value with ${NAME} references expanded; want
// names the expected kind of value for the error message.
func (d *decoder) text(n *yaml.Node, path, want string) (string, bool) {
	r := resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || r.Tag == "!!null" {
		d.errorf(n, path, "want %s, got %s", want, describe(r))
		return "", false
	}
	s, used, err := expand(r.Value, d.lookup)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return "", false
	}
	if used {
		d.env[path] = r.Value
	}
	return s, true
}
