package storage

// Scanner is the part of a store that ScanAll needs; domain services
// declare it in their own narrow store interfaces.
type Scanner interface {
	Scan(prefix, after string, limit int) ([]KV, error)
}

// scanPage is how many records ScanAll reads at a time.
const scanPage = 1000

// ScanAll visits every KV record under prefix, in name order, a page at a
// time; it stops at the first error fn returns.
func ScanAll(s Scanner, prefix string, fn func(name string, value []byte) error) error {
	after := ""
	for {
		kvs, err := s.Scan(prefix, after, scanPage)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := fn(kv.Name, kv.Value); err != nil {
				return err
			}
		}
		if len(kvs) < scanPage {
			return nil
		}
		after = kvs[len(kvs)-1].Name
	}
}
