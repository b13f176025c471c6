// Package version holds the one version number of the app; build.sh and the Splunk package
// files agree with it.
package version

// Version is the app's version (semantic versioning).
const Version = "0.1.0"
