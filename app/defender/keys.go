package defender

import (
	"slices"
	"strings"
	"time"
)

// The keys a window can be paged along besides newest lastUpdateTime first (alertCreationTime,
// id, oldest lastUpdateTime first): comparing versions, bounds and the filters that ask past them.

func validKey(k string) bool { return k == "created" || k == "id" || k == "lut" }

// prop is the API's name of key k.
func (dl *dialect) prop(k string) string {
	switch k {
	case "created":
		return dl.created
	case "id":
		return dl.id
	}
	return dl.updated
}

// cmpValue compares it's value of key k with the bound (t or s).
func cmpValue(k string, it item, t int64, s string) int {
	switch k {
	case "id":
		return strings.Compare(it.id, s)
	case "lut":
		return cmpInt(it.lut, t)
	default:
		return cmpInt(it.created, t)
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ahead reports whether a comes before b in the order (k, asc).
func ahead(k string, asc bool, a, b item) bool {
	var c int
	switch k {
	case "id":
		c = strings.Compare(a.id, b.id)
	case "lut":
		c = cmpInt(a.lut, b.lut)
	default:
		c = cmpInt(a.created, b.created)
	}
	if asc {
		return c < 0
	}
	return c > 0
}

func (k *KeyCursor) bound() (int64, string) {
	if k.Key == "id" {
		return 0, k.ID
	}
	return k.Time.UnixNano(), ""
}

// cmp compares it with the bound in the key's order: < 0 ahead of it (done), > 0 behind.
func (k *KeyCursor) cmp(it item) int {
	t, s := k.bound()
	c := cmpValue(k.Key, it, t, s)
	if k.Asc {
		return c
	}
	return -c
}

func (k *KeyCursor) covers(it item) bool {
	if k.Key == "created" && it.created == 0 {
		return false
	}
	switch c := k.cmp(it); {
	case c < 0:
		return true
	case c == 0:
		return !k.Inclusive || slices.Contains(k.Done, it.id)
	}
	return false
}

// keyLiteral is a value of the key as $filter writes it.
func (dl *dialect) keyLiteral(k string, t int64, s string) string {
	if k == "id" && dl.idNumber {
		return s // a number literal (the XDR incidentId; not filterable today, so never used)
	}
	if k == "id" {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return dl.timeLit(time.Unix(0, t))
}

// filter is the clause that keeps what the cursor has not covered (Done aside).
func (k *KeyCursor) filter(dl *dialect) string {
	t, s := k.bound()
	op := map[[2]bool]string{{false, true}: " le ", {false, false}: " lt ", {true, true}: " ge ", {true, false}: " gt "}[[2]bool{k.Asc, k.Inclusive}]
	return dl.prop(k.Key) + op + dl.keyLiteral(k.Key, t, s)
}

// keyDef is a candidate order: the keys an API might list by, other than newest
// lastUpdateTime first.
type keyDef struct {
	key string
	asc bool
}

var candidates = []keyDef{{"created", false}, {"created", true}, {"id", true}, {"id", false}, {"lut", true}}

// by names the order for WindowStats.By, e.g. "alertCreationTime, newest first".
func (kd keyDef) by(dl *dialect) string {
	switch {
	case kd.key == "id" && kd.asc:
		return dl.id
	case kd.key == "id":
		return dl.id + ", descending"
	case kd.asc:
		return dl.prop(kd.key) + ", oldest first"
	}
	return dl.prop(kd.key) + ", newest first"
}

func (kd keyDef) value(it item) (int64, string) {
	switch kd.key {
	case "id":
		return 0, it.id
	case "lut":
		return it.lut, ""
	}
	return it.created, ""
}

// edge finds the last value of items in the order kd, how many items are strictly ahead of it,
// and the ids at it.
func (kd keyDef) edge(items []item) (e item, k int, at []string) {
	e = items[0]
	for _, it := range items[1:] {
		if ahead(kd.key, kd.asc, e, it) {
			e = it
		}
	}
	for _, it := range items {
		if ahead(kd.key, kd.asc, it, e) {
			k++
		} else {
			at = append(at, it.id)
		}
	}
	return e, k, at
}

// aheadFilter is the clause for "ahead of e".
func (kd keyDef) aheadFilter(dl *dialect, e item) string {
	t, s := kd.value(e)
	op := " gt "
	if kd.asc {
		op = " lt "
	}
	return dl.prop(kd.key) + op + dl.keyLiteral(kd.key, t, s)
}

func (kd keyDef) cursor(e item, at []string) *KeyCursor {
	t, s := kd.value(e)
	k := &KeyCursor{Key: kd.key, Asc: kd.asc, ID: s}
	if kd.key == "id" {
		return k // ids are unique: the one at the edge is done
	}
	k.Time = time.Unix(0, t).UTC()
	k.Inclusive, k.Done = true, at
	return k
}

func (kd keyDef) sorted(items []item) bool {
	for i := 1; i < len(items); i++ {
		if ahead(kd.key, kd.asc, items[i], items[i-1]) {
			return false
		}
	}
	return true
}
