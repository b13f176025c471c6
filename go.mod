module ta-defender-alerts

go 1.26.0

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/kelseyhightower/envconfig v1.4.0
	github.com/klauspost/compress v1.20.4
	golang.org/x/net v0.62.0
	golang.org/x/oauth2 v0.38.0
	golang.org/x/sys v0.50.0
)

require golang.org/x/text v0.43.0 // indirect
