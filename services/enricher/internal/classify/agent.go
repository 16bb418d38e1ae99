package classify

import (
	"errors"
	"github.com/pixelstream/pixelstream/pkg/clockcache"
	"net/netip"
	"sync"

	"go4.org/netipx"

	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
)

// AgentResult says whether a hit came from a person, a mail image proxy
// fetching for a person, or a machine.
type AgentResult struct {
	// IsBot marks crawlers, link previewers, headless browsers, uptime
	// monitors and HTTP libraries. Bots are flagged, never dropped. It is
	// never set together with EmailProxy.
	IsBot bool
	// BotName is a short stable name such as "Googlebot", "bingbot",
	// "HeadlessChrome" or "UptimeRobot"; BotUnknown for a bot no list
	// names; "" when IsBot is false.
	BotName string
	// EmailProxy names the mail service whose image proxy fetched the
	// pixel (EmailProxyGmail, EmailProxyYahoo, EmailProxyAppleMPP), or "".
	// Such a hit is an email open; its device and location are the
	// proxy's, not the reader's.
	EmailProxy string
	// MachineOpen marks a fetch that happens whether or not the message is
	// read: Apple Mail Privacy Protection prefetches every message.
	MachineOpen bool
}

// DefaultAgentCacheSize is the number of distinct User-Agents whose verdicts
// are cached when AgentConfig.CacheSize is 0. An entry is the key plus a
// few words, so this costs about 16 MiB at the worst, like the device
// cache it sits beside.
const DefaultAgentCacheSize = 1 << 16

var errNegativeCache = errors.New("classify: negative cache size")

// AgentConfig configures an AgentClassifier. The zero value is the default.
type AgentConfig struct {
	// CacheSize is the number of User-Agents kept; 0 means
	// DefaultAgentCacheSize.
	CacheSize int
	// AppleProxyPrefixes are the networks from which an MPP User-Agent
	// counts as Apple Mail Privacy Protection; nil means
	// DefaultAppleProxyPrefixes. Operators may add Apple's published
	// iCloud Private Relay egress ranges.
	AppleProxyPrefixes []netip.Prefix
}

// AgentClassifier classifies User-Agents with a bounded cache of verdicts.
// It is safe for concurrent use.
//
// Real traffic is a few common User-Agents and a long tail: the verdict,
// which depends only on the User-Agent, is cached; the Apple Mail Privacy
// Protection test, which also depends on the IP, is made on every call
// from a cached flag and an address-set lookup.
type AgentClassifier struct {
	cache *clockcache.Cache[uaVerdict]
	apple *netipx.IPSet
}

// NewAgentClassifier returns a classifier configured by cfg. It fails only
// for a negative cache size or an invalid prefix.
func NewAgentClassifier(cfg AgentConfig) (*AgentClassifier, error) {
	if cfg.CacheSize < 0 {
		return nil, errNegativeCache
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultAgentCacheSize
	}
	prefixes := cfg.AppleProxyPrefixes
	if prefixes == nil {
		prefixes = DefaultAppleProxyPrefixes
	}
	set, err := newIPSet(prefixes)
	if err != nil {
		return nil, err
	}
	return &AgentClassifier{cache: clockcache.New[uaVerdict](cfg.CacheSize), apple: set}, nil
}

// Classify fills out for a hit with User-Agent ua (only its first
// device.MaxUALength bytes count, as for the device parser), the device
// parser's result for the same ua (dev may be nil) and the client IP (the
// zero Addr if unknown). ua is not retained.
//
// Order: mail image proxies first (every common bot list calls Gmail's and
// Yahoo's proxies bots, which would throw away most email opens), then
// bots. A cached User-Agent costs a map lookup and no allocation. The
// verdict is cached per User-Agent, so dev must be the parse of ua.
func (c *AgentClassifier) Classify(ua []byte, dev *device.Result, ip netip.Addr, out *AgentResult) {
	if len(ua) > device.MaxUALength {
		ua = ua[:device.MaxUALength]
	}
	var v uaVerdict
	if !c.cache.Get(ua, &v) {
		// Two workers missing on the same new User-Agent both compute it;
		// that is rarer and cheaper than making every miss wait on a lock.
		v = computeVerdict(ua, dev)
		c.cache.Put(string(ua), &v)
	}
	*out = AgentResult{IsBot: v.isBot, BotName: v.botName, EmailProxy: v.emailProxy}
	if v.mppCandidate && ip.IsValid() && c.apple.Contains(ip.Unmap()) {
		*out = AgentResult{EmailProxy: EmailProxyAppleMPP, MachineOpen: true}
	}
}

// Stats returns how many Classify calls were answered from the cache and
// how many computed a verdict. The counters only grow, so they can be
// exported as Prometheus counters directly.
func (c *AgentClassifier) Stats() (hits, misses uint64) {
	return c.cache.Stats()
}

// computeVerdict is the uncached classification of a User-Agent.
func computeVerdict(ua []byte, dev *device.Result) uaVerdict {
	if p := uaMailProxy(ua, dev); p != "" {
		return uaVerdict{emailProxy: p}
	}
	if isMPPUserAgent(ua) {
		// Not a bot wherever it comes from: from Apple's relays it is an
		// MPP fetch, elsewhere Apple Mail itself (MPP off) or a bare
		// "Mozilla/5.0", which ESPs find is overwhelmingly MPP too.
		return uaVerdict{mppCandidate: true}
	}
	isBot, name := botVerdict(string(ua), dev)
	return uaVerdict{isBot: isBot, botName: name}
}

var defaultAgents = sync.OnceValue(func() *AgentClassifier {
	c, err := NewAgentClassifier(AgentConfig{})
	if err != nil {
		panic(err) // the defaults are valid; a test proves it
	}
	return c
})

// Agent classifies a hit with a process-wide AgentClassifier using the
// default configuration; see AgentClassifier.Classify.
func Agent(ua []byte, dev *device.Result, ip netip.Addr, out *AgentResult) {
	defaultAgents().Classify(ua, dev, ip, out)
}

// AgentStats returns the cache counters of the classifier behind Agent.
func AgentStats() (hits, misses uint64) {
	return defaultAgents().Stats()
}
