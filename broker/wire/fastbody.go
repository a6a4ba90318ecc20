package wire

import (
	"slices"
	"strings"
)

// fastBody is ValidateBody for the common MsgBody, without encoding/json:
// decoding into maps of RawMessage and marshalling them back (sorted keys,
// compacted values) was most of the ~40 allocations and ~9 µs of every
// send. It handles only plain input: keys without escapes or HTML
// characters, each key once, values already in the form json.Marshal
// writes. For anything else, and for every error, it returns ok=false and
// ValidateBody takes the encoding/json path, which decides and words the
// error. Its output is byte for byte what that path produces
// (FuzzFastBody compares them). raw must be valid JSON.
func fastBody(raw []byte, maxElements int) (out []byte, ok bool) {
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, false
	}
	type field struct{ key, val []byte }
	var fieldBuf [16]field
	out = make([]byte, 0, len(raw)+16)
	out = append(out, '[')
	n, custom := 0, 0
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return nil, false // empty: the error is worded by the slow path
	}
	for {
		// One element: {"MsgType": string, "MsgContent": object}, in either order.
		if i >= len(raw) || raw[i] != '{' {
			return nil, false
		}
		var msgType, content []byte
		i = skipWS(raw, i+1)
		for k := 0; ; k++ {
			if k == 2 || i >= len(raw) || raw[i] != '"' {
				return nil, false
			}
			key, vs, ve, ok := memberAt(raw, i)
			if !ok {
				return nil, false
			}
			switch {
			case string(key) == "MsgType" && msgType == nil:
				msgType = raw[vs:ve]
			case string(key) == "MsgContent" && content == nil:
				content = raw[vs:ve]
			default:
				return nil, false
			}
			i = skipWS(raw, ve)
			if i < len(raw) && raw[i] == ',' {
				i = skipWS(raw, i+1)
				continue
			}
			if i >= len(raw) || raw[i] != '}' || k != 1 {
				return nil, false
			}
			i = skipWS(raw, i+1)
			break
		}
		if msgType[0] != '"' {
			return nil, false
		}
		typ, _, plain := stringAt(msgType, 0)
		if !plain {
			return nil, false
		}
		rules, known := elementRules[string(typ)]
		if !known {
			return nil, false
		}
		if string(typ) == "TIMCustomElem" {
			if custom++; custom > 1 {
				return nil, false
			}
		}
		// MsgContent: an object of plain keys, each once, values in
		// json.Marshal's form; stored with its keys sorted.
		if content[0] != '{' {
			return nil, false
		}
		fields := fieldBuf[:0]
		c := skipWS(content, 1)
		if c < len(content) && content[c] != '}' {
			for {
				if c >= len(content) || content[c] != '"' {
					return nil, false
				}
				key, vs, ve, ok := memberAt(content, c)
				if !ok || !marshalForm(content[vs:ve]) {
					return nil, false
				}
				fields = append(fields, field{key, content[vs:ve]})
				c = skipWS(content, ve)
				if c < len(content) && content[c] == ',' {
					c = skipWS(content, c+1)
					continue
				}
				break
			}
		}
		slices.SortFunc(fields, func(a, b field) int { return strings.Compare(string(a.key), string(b.key)) })
		for f := 1; f < len(fields); f++ {
			if string(fields[f].key) == string(fields[f-1].key) {
				return nil, false // a duplicate: encoding/json keeps the last one
			}
		}
		for _, r := range rules {
			f, found := slices.BinarySearchFunc(fields, r.name, func(a field, name string) int { return strings.Compare(string(a.key), name) })
			if !found || string(fields[f].val) == "null" {
				if r.required {
					return nil, false
				}
				continue
			}
			if r.checkValue(fields[f].val) != nil {
				return nil, false
			}
		}
		if n++; n > maxElements {
			return nil, false
		}
		if n > 1 {
			out = append(out, ',')
		}
		out = append(out, `{"MsgType":"`...)
		out = append(out, typ...)
		out = append(out, `","MsgContent":{`...)
		for f, fl := range fields {
			if f > 0 {
				out = append(out, ',')
			}
			out = append(out, '"')
			out = append(out, fl.key...)
			out = append(out, `":`...)
			out = append(out, fl.val...)
		}
		out = append(out, "}}"...)
		if i < len(raw) && raw[i] == ',' {
			i = skipWS(raw, i+1)
			continue
		}
		if i >= len(raw) || raw[i] != ']' || skipWS(raw, i+1) != len(raw) {
			return nil, false
		}
		return append(out, ']'), true
	}
}

// memberAt reads an object member `"key": value` whose key starts at i: the
// key (plain: no escapes) and the value's bounds b[vs:ve].
func memberAt(b []byte, i int) (key []byte, vs, ve int, ok bool) {
	key, j, plain := stringAt(b, i)
	if !plain {
		return nil, 0, 0, false
	}
	j = skipWS(b, j)
	if j >= len(b) || b[j] != ':' {
		return nil, 0, 0, false
	}
	vs = skipWS(b, j+1)
	ve = skipValue(b, vs)
	return key, vs, ve, ve >= 0
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// stringAt reads the JSON string starting at b[i] == '"': its contents,
// the index after its closing quote, and whether it is plain (printable
// ASCII with no escapes and no HTML characters, so it is its own decoded
// and encoded form).
func stringAt(b []byte, i int) (s []byte, end int, plain bool) {
	plain = true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, plain
		case c == '\\':
			plain = false
			j++
		case c < 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '&':
			plain = false
		}
	}
	return nil, -1, false
}

// skipValue returns the index just after the JSON value starting at b[i]
// (valid JSON), or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		_, end, _ := stringAt(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				_, end, _ := stringAt(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i // number, true, false, null
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
		j++
	}
	return j
}
