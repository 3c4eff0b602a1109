package registry

// ParseClientCertificate exports parseClientCertificate to the package's external tests.
var ParseClientCertificate = parseClientCertificate
