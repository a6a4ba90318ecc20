package history

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PathPrefix is where the HTTP listener serves the files.
const PathPrefix = "/history/"

// sign is the link signature: HMAC-SHA256 with the app key over the file
// name and the expiry, so a link cannot be moved to another file or kept
// past its time.
func (s *Service) sign(name string, expires int64) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("imbroker-history\n" + name + "\n" + strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// Link is the path and query of name's download link valid until expires.
func (s *Service) Link(name string, expires time.Time) string {
	e := expires.Unix()
	return PathPrefix + name + "?expires=" + strconv.FormatInt(e, 10) + "&sig=" + s.sign(name, e)
}

// validName admits only the names Export makes: no path separators, no dots
// but the extension's.
func validName(name string) bool {
	if !strings.HasSuffix(name, ".gz") || strings.Count(name, ".") != 1 || len(name) > 128 {
		return false
	}
	for _, c := range strings.TrimSuffix(name, ".gz") {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ServeHTTP serves GET /history/{name}?expires=&sig=: 403 for a missing,
// forged or expired signature, 404 for a file that is gone.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, PathPrefix)
	q := r.URL.Query()
	expires, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if !validName(name) || err != nil || !hmac.Equal([]byte(q.Get("sig")), []byte(s.sign(name, expires))) {
		http.Error(w, "forbidden: bad signature", http.StatusForbidden)
		return
	}
	if time.Now().Unix() > expires {
		http.Error(w, "forbidden: link expired", http.StatusForbidden)
		return
	}
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	http.ServeContent(w, r, name, info.ModTime(), f)
}

// Close removes the file directory when it was a temporary one (in-memory
// storage); called at shutdown.
func (s *Service) Close(temporary bool) {
	if temporary {
		os.RemoveAll(s.dir)
	}
}
