package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A problem is one configuration problem: the key path it is about, what is
// wrong, and the YAML line it was found on (0 when it comes from Validate).
type problem struct {
	path, msg string
	line      int
}

func (p problem) String() string {
	s := p.path + ": " + p.msg
	if p.path == "" {
		s = p.msg
	}
	if p.line > 0 {
		s += fmt.Sprintf(" (line %d)", p.line)
	}
	return s
}

// durationHint says how a duration is written; every duration problem ends with it.
const durationHint = "write it like 168h, 90m or 30s (units ns, us, ms, s, m, h)"

var durationType = reflect.TypeOf(time.Duration(0))

// checkYAML walks a parsed document against the type it will be decoded into
// and returns every problem the decoder would report, in the user's terms:
// the key path, the line, and a hint (the nearest known key, how a duration
// is written, what kind of value is expected). It reports what
// yaml.v3 reports as type errors, so none of those need be shown raw.
func checkYAML(doc *yaml.Node, t reflect.Type) []problem {
	c := &yamlChecker{}
	if doc.Kind == 0 {
		return nil // empty file: all defaults
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		doc = doc.Content[0]
	}
	c.walk(doc, t, "")
	return c.problems
}

type yamlChecker struct{ problems []problem }

func (c *yamlChecker) add(n *yaml.Node, path, msg string) {
	c.problems = append(c.problems, problem{path: path, msg: msg, line: n.Line})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (c *yamlChecker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null leaves the default (or clears a list or map)
	}
	for t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		c.leaf(n, t, path)
	case t.Kind() == reflect.Struct:
		if c.expect(n, yaml.MappingNode, path, "must be a mapping of keys") {
			fields := structFields(t)
			c.mapping(n, path, func(key *yaml.Node, val *yaml.Node) {
				ft, ok := fields[key.Value]
				if !ok {
					c.add(key, join(path, key.Value), unknownKey(key.Value, fields))
					return
				}
				c.walk(val, ft, join(path, key.Value))
			})
		}
	case t.Kind() == reflect.Map:
		if c.expect(n, yaml.MappingNode, path, "must be a mapping of keys") {
			c.mapping(n, path, func(key *yaml.Node, val *yaml.Node) {
				c.walk(val, t.Elem(), join(path, key.Value))
			})
		}
	case t.Kind() == reflect.Slice:
		if c.expect(n, yaml.SequenceNode, path, "must be a list") {
			for i, e := range n.Content {
				c.walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	default:
		c.leaf(n, t, path)
	}
}

// expect reports a node of the wrong kind and returns whether n has the kind.
func (c *yamlChecker) expect(n *yaml.Node, kind yaml.Kind, path, msg string) bool {
	if n.Kind == kind {
		return true
	}
	c.add(n, path, msg+", not "+describe(n))
	return false
}

// mapping calls f for each key of n, reporting keys set twice, and for the
// keys merge keys (<<: *anchor) bring in.
func (c *yamlChecker) mapping(n *yaml.Node, path string, f func(key, val *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if first, dup := seen[key.Value]; dup {
			c.add(key, join(path, key.Value), fmt.Sprintf("set twice (first at line %d)", first))
			continue
		}
		seen[key.Value] = key.Line
		if key.Kind == yaml.ScalarNode && key.Tag == "!!merge" {
			for val.Kind == yaml.AliasNode && val.Alias != nil {
				val = val.Alias
			}
			merged := []*yaml.Node{val}
			if val.Kind == yaml.SequenceNode {
				merged = val.Content
			}
			for _, m := range merged {
				for m.Kind == yaml.AliasNode && m.Alias != nil {
					m = m.Alias
				}
				if c.expect(m, yaml.MappingNode, path, "<< must merge a mapping") {
					c.mapping(m, path, f)
				}
			}
			continue
		}
		f(key, val)
	}
}

// leaf checks a single value by decoding it into the field's type.
func (c *yamlChecker) leaf(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		msg := "must be a single value, not " + describe(n)
		if t == durationType {
			msg = "must be a duration, not " + describe(n) + ": " + durationHint
		}
		c.add(n, path, msg)
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err == nil {
		return
	}
	v := strconv.Quote(n.Value)
	switch {
	case t == durationType:
		c.add(n, path, v+" is not a duration: "+durationHint)
	case t.Kind() == reflect.Bool:
		c.add(n, path, v+" is not true or false")
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		msg := v + " is not a whole number"
		if _, err := strconv.ParseInt(n.Value, 0, 64); err == nil && t.Bits() < 64 { // a number, out of range
			hi := int64(math.MaxInt64) >> (64 - t.Bits())
			msg = fmt.Sprintf("%s is out of range: a whole number from %d to %d", v, -hi-1, hi)
		}
		c.add(n, path, msg)
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		msg := v + " is not a whole number of 0 or more"
		if _, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			msg = fmt.Sprintf("%s is out of range: a whole number from 0 to %d", v, uint64(math.MaxUint64)>>(64-t.Bits()))
		}
		c.add(n, path, msg)
	default:
		c.add(n, path, fmt.Sprintf("%s is not a valid %s", v, t.Kind()))
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

// structFields maps each YAML key of struct type t to its field's type,
// following inline fields.
func structFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			for k, v := range structFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// unknownKey explains an unknown key: the nearest known one when it is close
// enough to be a misspelling, or else the keys allowed there.
func unknownKey(key string, fields map[string]reflect.Type) string {
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	best, bestDist := "", -1
	for _, k := range known {
		if d := editDistance(strings.ToLower(key), k); bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" && bestDist <= max(2, len(best)/3) {
		return fmt.Sprintf("unknown key (did you mean %q?)", best)
	}
	return "unknown key (known keys here: " + strings.Join(known, ", ") + ")"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
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
