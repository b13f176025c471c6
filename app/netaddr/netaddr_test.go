package netaddr

import "testing"

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"10.0.0.1": false, "splunk.example.com": false, "": false, "localhost.example.com": false} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, give, want string }{
		{"no credentials", "https://splunk.example.com:8088/services", "https://splunk.example.com:8088/services"},
		{"not a URL", "splunk.example.com", "splunk.example.com"},
		{"user and password", "https://alice:hunter2@host:8088/x", "https://xxxxx@host:8088/x"},
		{"user only (a token as user name)", "https://8a3f2b1c@host", "https://xxxxx@host"},
		{"other scheme", "ftp://alice:hunter2@host", "ftp://xxxxx@host"},
		{"unparseable port", "https://alice:hunter2@host:80x", "https://xxxxx@host:80x"},
		{"bad escape", "https://alice:hun%zzter2@host", "https://xxxxx@host"},
		{"slash in password", "https://alice:hun/ter2@host/p", "https://xxxxx@host/p"},
		{"hash in password", "https://alice:hun#ter2@host", "https://xxxxx@host"},
		{"at in password", "https://alice:p@ss@host", "https://xxxxx@host"},
		{"no scheme", "alice:hunter2@host", "xxxxx@host"},
		{"scheme-relative", "//alice:hunter2@host", "//xxxxx@host"},
		{"'//' only after the '@'", "alice:hunter2@host//x", "xxxxx@host//x"},
		{"an '@' in a path hides more, never less", "https://host/a@b", "https://xxxxx@b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactURL(tt.give); got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}
