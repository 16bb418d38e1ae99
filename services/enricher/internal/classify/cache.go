package classify

// uaVerdict is everything about a record that depends on the User-Agent
// alone, and so can be cached per User-Agent. The IP-dependent part (Apple
// Mail Privacy Protection) is decided outside the cache from mppCandidate.
type uaVerdict struct {
	isBot      bool
	botName    string
	emailProxy string // proxies recognizable from the User-Agent alone
	// mppCandidate marks the User-Agents Apple's Mail Privacy Protection
	// proxy sends ("Mozilla/5.0" alone, or Apple Mail's bare WebKit
	// string). Whether a hit is an MPP fetch also depends on the IP.
	mppCandidate bool
}
