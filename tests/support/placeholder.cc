// Test helpers live here (TLS client, PKI fixture, process runner).
