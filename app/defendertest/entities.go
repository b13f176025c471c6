package defendertest

import (
	"fmt"
	"strconv"
	"time"
)

// What an alert names that differs from one alert to the next in a real tenant: the device it
// was raised on, the user, the file it found, process ids. Both renderings (the Alert API's
// and Graph's) take them from here, so the two feeds carry the same variety and neither
// compresses better for being made of one example repeated: hashes and device ids are hex
// that gzip cannot shrink much, as in real alerts.

// Counts of distinct things in the stand-in's tenant: alerts on the same device, by the same
// user or for the same malware sample share them, as real alerts do.
const (
	tenantDevices = 5000
	tenantUsers   = 3000
	tenantFiles   = 800
)

type entities struct {
	n                  int // the alert's number
	device, user, file int
	pid, ppid          int
}

// mix is splitmix64's finaliser: a well-spread 64-bit value from a counter.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// entitiesOf derives an alert's entities from its number (stable for the alert).
func entitiesOf(a *alert) entities {
	h := mix(uint64(a.incident))
	e := entities{
		n:      a.incident,
		device: int(h % tenantDevices),
		user:   int((h >> 16) % tenantUsers),
		file:   int((h >> 32) % tenantFiles),
		pid:    4 * (int((h>>8)%15000) + 100), // Windows process ids are multiples of 4
		ppid:   4 * (int((h>>24)%15000) + 100),
	}
	if e.ppid == e.pid {
		e.ppid += 4
	}
	return e
}

// appendHex appends n lowercase hex digits derived from kind and seed: the same pair always
// gives the same digits (a device's id, a file's hash).
func appendHex(dst []byte, kind, seed uint64, n int) []byte {
	const digits = "0123456789abcdef"
	var x uint64
	for i := 0; i < n; i++ {
		if i%16 == 0 {
			x = mix(kind<<56 ^ seed<<8 ^ uint64(i/16))
		}
		dst = append(dst, digits[x>>60])
		x <<= 4
	}
	return dst
}

// Kinds of hex, so a device id and a file hash from the same number differ.
const (
	hexDevice = iota + 1
	hexSHA1
	hexSHA256
	hexAADUser
	hexMessage
	hexVM
)

func (e entities) dnsName() string { return fmt.Sprintf("ws%05d.emea.contoso.com", e.device) }

func (e entities) userName() string { return "user" + strconv.Itoa(e.user) }

func (e entities) upn() string { return e.userName() + "@contoso.com" }

// quotedHex appends, quoted, n hex digits made from kind and seed.
func quotedHex(dst []byte, kind uint64, seed, n int) []byte {
	return append(appendHex(append(dst, '"'), kind, uint64(seed), n), '"')
}

// quotedGUID appends, quoted, a GUID made from kind and seed.
func quotedGUID(dst []byte, kind uint64, seed int) []byte {
	var h [32]byte
	appendHex(h[:0], kind, uint64(seed), 32)
	dst = append(dst, '"')
	for i, part := range [...][2]int{{0, 8}, {8, 12}, {12, 16}, {16, 20}, {20, 32}} {
		if i > 0 {
			dst = append(dst, '-')
		}
		dst = append(dst, h[part[0]:part[1]]...)
	}
	return append(dst, '"')
}

// fileName is the sample's name: a few names, as malware reuses them.
func (e entities) fileName() string {
	return [...]string{"suspicious.dll", "update.dll", "helper32.dll", "msvcrt_x.dll", "loader.dll"}[e.file%5]
}

// ip is an address in the documentation ranges (RFC 5737).
func (e entities) ip() string {
	return fmt.Sprintf("198.51.100.%d", e.device%250+1)
}

// value appends the JSON value of an entity placeholder of the templates; an unknown name
// is a bug in a template.
func (e entities) value(dst []byte, name string) []byte {
	switch name {
	case "DEVICE":
		return quotedHex(dst, hexDevice, e.device, 40)
	case "DNS":
		return plainQuote(dst, e.dnsName())
	case "USER":
		return plainQuote(dst, e.userName())
	case "UPN":
		return plainQuote(dst, e.upn())
	case "SID":
		return plainQuote(dst, "S-1-5-21-3623811015-3361044348-30300820-"+strconv.Itoa(1100+e.user))
	case "AADUSER":
		return quotedGUID(dst, hexAADUser, e.user)
	case "MESSAGE": // an e-mail's network message id: one per alert
		return quotedGUID(dst, hexMessage, e.n)
	case "VMID": // a device's virtual machine id
		return quotedGUID(dst, hexVM, e.device)
	case "FIRSTSEEN": // when the device was onboarded: a day in 2024, with a time of day
		d := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(e.device%366)*24*time.Hour + time.Duration(e.device*7919%86400)*time.Second)
		return quoteTime(dst, d)
	case "DISPLAY":
		return plainQuote(dst, "User "+strconv.Itoa(e.user))
	case "PID":
		return strconv.AppendInt(dst, int64(e.pid), 10)
	case "PPID":
		return strconv.AppendInt(dst, int64(e.ppid), 10)
	case "SHA1":
		return quotedHex(dst, hexSHA1, e.file, 40)
	case "SHA256":
		return quotedHex(dst, hexSHA256, e.file, 64)
	case "FILE":
		return plainQuote(dst, e.fileName())
	case "IP":
		return plainQuote(dst, e.ip())
	}
	panic("defendertest: unknown placeholder " + name)
}
