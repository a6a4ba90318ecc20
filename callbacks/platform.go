package callbacks

import "context"

// OptPlatform values (tencent-im.md §5): RESTAPI for what a REST call
// started, Unknown for the rest (an MQTT client does not say which
// platform it runs on).
const (
	PlatformREST    = "RESTAPI"
	PlatformUnknown = "Unknown"
)

type platformKey struct{}

// WithPlatform marks ctx as coming from platform: the callbacks its work
// sends carry it as OptPlatform.
func WithPlatform(ctx context.Context, platform string) context.Context {
	return context.WithValue(ctx, platformKey{}, platform)
}

// Platform is ctx's OptPlatform (Unknown when unmarked).
func Platform(ctx context.Context) string {
	if p, ok := ctx.Value(platformKey{}).(string); ok && p != "" {
		return p
	}
	return PlatformUnknown
}

// FromREST reports whether ctx's work was started by a REST call (Tencent
// fires no Sns before-callbacks for those).
func FromREST(ctx context.Context) bool { return Platform(ctx) == PlatformREST }
