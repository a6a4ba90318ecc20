package wire

// Group event names in group and user streams (docs/protocol.md).
const (
	EventGroupMsg = "GroupMsg"
	EventGroupTip = "GroupTip"
)
