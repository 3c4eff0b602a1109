package localstack

import _ "unsafe" // for go:linkname

// kumo persists its state (with KUMO_DATA_DIR) by marking a service's snapshot dirty on
// every write and writing the dirty ones to disk once a second, and synchronously when its
// own server shuts down (its command's signal handler runs each service's Close). The
// library's Server.Close, all an embedder can call, only stops the HTTP server: a stack
// stopped within a second of its last writes kept none of them. kumo's save entry point,
// storage.FlushSnapshots ("exported so tests can force a flush"), is in an internal
// package, so it is reached here, the one place, by its symbol name. If kumo renames it,
// the build fails at link time rather than losing data quietly, and
// TestDataDirKeepsWritesOnStop says so too.
//
//go:linkname flushSnapshots github.com/sivchari/kumo/internal/storage.FlushSnapshots
func flushSnapshots()
