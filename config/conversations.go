package config

import "time"

// Conversations configures the conversation list, read reports, recall and
// per-message read receipts.
type Conversations struct {
	MaxList           int           `yaml:"max_list"`            // conversations one conv.list returns at most; default 500
	RecallWindow      time.Duration `yaml:"recall_window"`       // how long a sender may recall (Tencent: 2 min); default 120s
	ReceiptMaxMembers int           `yaml:"receipt_max_members"` // groups up to this size support per-message receipts (Tencent: 200); default 200
}

func defaultConversations() Conversations {
	return Conversations{MaxList: 500, RecallWindow: 120 * time.Second, ReceiptMaxMembers: 200}
}

func (v *validator) conversations(c Conversations) {
	v.check(c.MaxList >= 1, "conversations.max_list", "must be at least 1")
	v.positive("conversations.recall_window", c.RecallWindow)
	v.check(c.ReceiptMaxMembers >= 0, "conversations.receipt_max_members", "must not be negative")
}
