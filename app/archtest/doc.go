// Package archtest holds tests of the code's shape: which packages may know both Defender and
// HEC, how long a file may grow. It has no code of its own.
package archtest
