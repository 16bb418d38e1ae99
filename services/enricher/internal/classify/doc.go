// Package classify answers two questions about every hit on the enricher's
// hot path: human or machine (Agent: bots, mail image proxies, Apple Mail
// Privacy Protection), and where the visit came from (Referrer: search,
// social, email, paid, internal, unknown or direct; Channel: GA4-style
// default channel; EmailEvent: email opens and their identifiers).
//
// Everything is built for 100k records/s on two cores: a User-Agent's
// verdict is cached (a hit is a map lookup, no allocation), referrer
// hosts are map lookups in an embedded data set, and Channel and
// EmailEvent only compare strings. The rules and the data's provenance
// are documented in docs/classification.md.
//
// One concern per file: agent.go (Agent), mailproxy.go (mail image
// proxies), bots.go (crawler detection and names), cache.go (the cached
// verdict, kept in a pkg/clockcache), referrer.go and referrerdata.go (Referrer and its data),
// channel.go (Channel), email.go (EmailEvent), preload.go (Preload).
package classify
