package imerr

// The table. Codes and texts follow Tencent IM's documentation; a code
// appears once. The reason is what an MQTT 5 client sees on a PUBACK (a
// CONNACK picks its own reason: see broker's connackCode).
var (
	// Common to every entry point.
	Internal = row("Internal", 20005, ReasonUnspecified, "internal error")
	// The store cannot write (disk full, a failed write): nothing was stored.
	StoreUnavailable = row("StoreUnavailable", 20004, ReasonQuotaExceeded, "the server cannot store anything now; retry later")
	// A commit that did not finish within storage.commit_timeout: it may
	// still land, so a resend must reuse its MsgRandom (deduplicated).
	StoreTimeout = row("StoreTimeout", 90994, ReasonUnspecified, "the server did not store this in time; resend with the same MsgRandom")
	NoPermission = row("NoPermission", 20001, ReasonNotAuthorized, "not allowed")
	BadAccount   = row("BadAccount", 20003, ReasonImplementation, "invalid UserID")
	BadJSON      = row("BadJSON", 90001, ReasonPayloadFormat, "body is not valid JSON")
	BadMsgBody   = row("BadMsgBody", 90002, ReasonPayloadFormat, "MsgBody is invalid")
	MsgRandom    = row("MsgRandom", 90005, ReasonPayloadFormat, "MsgRandom is required")
	ToMissing    = row("ToMissing", 90003, ReasonPayloadFormat, "To_Account is missing or invalid")
	MsgTime      = row("MsgTime", 90006, ReasonPayloadFormat, "MsgTimeStamp is missing or invalid")
	FromMissing  = row("FromMissing", 90008, ReasonPayloadFormat, "From_Account is missing or invalid")
	TooManyTo    = row("TooManyTo", 90011, ReasonPayloadFormat, "too many recipients")
	ToUnknown    = row("ToUnknown", 90012, ReasonImplementation, "To_Account is not an account (never imported, never logged in)")
	BadMsgKey    = row("BadMsgKey", 90054, ReasonPayloadFormat, "MsgKey is invalid")
	TooLong      = row("TooLong", 80002, ReasonPayloadFormat, "message too long")
	TooLarge     = row("TooLarge", 93000, ReasonPayloadFormat, "request too large")
	URLParse     = row("URLParse", 60002, ReasonPayloadFormat, "URL parameters are invalid")
	BadParams    = row("BadParams", 60003, ReasonPayloadFormat, "request fields are invalid")
	BadAppID     = row("BadAppID", 60006, ReasonNotAuthorized, "SDKAppID does not match")
	RateLimited  = row("RateLimited", 60007, ReasonQuotaExceeded, "request rate limit exceeded")
	BadCommand   = row("BadCommand", 60009, ReasonTopicInvalid, "unknown request")
	AdminOnly    = row("AdminOnly", 60010, ReasonNotAuthorized, "only the app admin may call this")
	AppIDMissing = row("AppIDMissing", 60012, ReasonPayloadFormat, "sdkappid or identifier missing")

	// Login and accounts.
	UserSigExpired = row("UserSigExpired", 70001, ReasonBadCredentials, "UserSig expired")
	UserSigEmpty   = row("UserSigEmpty", 70002, ReasonBadCredentials, "UserSig empty")
	UserSigInvalid = row("UserSigInvalid", 70003, ReasonBadCredentials, "UserSig invalid")
	UserSigVerify  = row("UserSigVerify", 70009, ReasonBadCredentials, "UserSig verification failed")
	UserSigUser    = row("UserSigUser", 70013, ReasonNotAuthorized, "UserID does not match the UserSig")
	UserSigApp     = row("UserSigApp", 70014, ReasonNotAuthorized, "SDKAppID does not match the UserSig")
	UserSigNoKey   = row("UserSigNoKey", 70016, ReasonBadCredentials, "public key not found: v1 (ECDSA) UserSigs need app.public_key")
	AccountUnknown = row("AccountUnknown", 70107, ReasonImplementation, "UserID does not exist")
	// A login refused at devices.max_per_user (on_exceed: refuse): Tencent's
	// "login throttled" is the refusal nearest to it.
	DeviceLimit      = row("DeviceLimit", 70114, ReasonQuotaExceeded, "device limit reached")
	AccountBadParams = row("AccountBadParams", 70402, ReasonImplementation, "invalid parameters")

	// One-to-one messages.
	CallbackRejectC2C = row("CallbackRejectC2C", 20006, ReasonImplementation, "refused by the app's callback")
	C2CBlacklisted    = row("C2CBlacklisted", 20007, ReasonNotAuthorized, "you are on the recipient's blacklist")
	C2CNotFriends     = row("C2CNotFriends", 20009, ReasonNotAuthorized, "not friends")
	C2CNotTheirs      = row("C2CNotTheirs", 20010, ReasonNotAuthorized, "you are not on the recipient's friend list")
	C2CNotYours       = row("C2CNotYours", 20011, ReasonNotAuthorized, "the recipient is not on your friend list")
	C2CMuted          = row("C2CMuted", 20012, ReasonNotAuthorized, "you are muted")
	RecallWindow      = row("RecallWindow", 20016, ReasonImplementation, "the recall window has passed")
	RecallNone        = row("RecallNone", 20022, ReasonImplementation, "no such message")
	RecallAgain       = row("RecallAgain", 20023, ReasonImplementation, "already recalled")
	CallbackFailed    = row("CallbackFailed", 80003, ReasonImplementation, "the callback failed and the policy refuses")

	// Groups.
	GroupInternal       = row("GroupInternal", 10002, ReasonUnspecified, "internal error")
	GroupBadParams      = row("GroupBadParams", 10004, ReasonImplementation, "invalid parameters")
	GroupNoPermission   = row("GroupNoPermission", 10007, ReasonNotAuthorized, "no permission")
	GroupOwnerQuit      = row("GroupOwnerQuit", 10009, ReasonImplementation, "the owner cannot quit")
	GroupNotFound       = row("GroupNotFound", 10010, ReasonImplementation, "no such group")
	GroupAlreadyMember  = row("GroupAlreadyMember", 10013, ReasonImplementation, "already a member")
	GroupFull           = row("GroupFull", 10014, ReasonImplementation, "the group is full")
	GroupInvalid        = row("GroupInvalid", 10015, ReasonImplementation, "invalid group")
	CallbackRejectGroup = row("CallbackRejectGroup", 10016, ReasonImplementation, "refused by the app's callback")
	GroupMuted          = row("GroupMuted", 10017, ReasonNotAuthorized, "muted in this group")
	GroupIDTaken        = row("GroupIDTaken", 10021, ReasonImplementation, "GroupId is taken")
	GroupRecallNone     = row("GroupRecallNone", 10030, ReasonImplementation, "no such group message to recall")
	GroupRecallWindow   = row("GroupRecallWindow", 10031, ReasonImplementation, "the recall window has passed")
	GroupTooManyJoined  = row("GroupTooManyJoined", 10037, ReasonImplementation, "too many groups joined")
	GroupNoRoaming      = row("GroupNoRoaming", 10044, ReasonImplementation, "this group type keeps no history")
	ReceiptTooLarge     = row("ReceiptTooLarge", 10060, ReasonImplementation, "group too large for read receipts")
	ReceiptLiveRoom     = row("ReceiptLiveRoom", 10061, ReasonImplementation, "no read receipts in live rooms")
	ReceiptNone         = row("ReceiptNone", 10062, ReasonImplementation, "the message asked for no receipt")

	// Relations (sns).
	SnsBadParams       = row("SnsBadParams", 30001, ReasonImplementation, "invalid parameters")
	SnsAdminRequired   = row("SnsAdminRequired", 30004, ReasonNotAuthorized, "the app admin is required")
	SnsNotFriend       = row("SnsNotFriend", 30006, ReasonImplementation, "not a friend")
	SnsFriendsFull     = row("SnsFriendsFull", 30010, ReasonQuotaExceeded, "your friend list is full")
	SnsGroupsFull      = row("SnsGroupsFull", 30011, ReasonQuotaExceeded, "too many friend lists")
	SnsPendingFull     = row("SnsPendingFull", 30012, ReasonQuotaExceeded, "too many pending friend requests")
	SnsBlacklistFull   = row("SnsBlacklistFull", 30013, ReasonQuotaExceeded, "your blacklist is full")
	SnsPeerFriendsFull = row("SnsPeerFriendsFull", 30014, ReasonQuotaExceeded, "the peer's friend list is full")
	SnsPeerBlacklisted = row("SnsPeerBlacklisted", 30515, ReasonNotAuthorized, "the peer is on your blacklist")
	SnsPeerDeniesAll   = row("SnsPeerDeniesAll", 30516, ReasonNotAuthorized, "the peer accepts no friend requests")
	SnsYouBlacklisted  = row("SnsYouBlacklisted", 30525, ReasonNotAuthorized, "you are on the peer's blacklist")
	SnsPending         = row("SnsPending", 30539, ReasonImplementation, "request sent, waiting for the peer")
	SnsForbidden       = row("SnsForbidden", 30540, ReasonNotAuthorized, "friend requests are forbidden for this user")
	CallbackRejectSns  = row("CallbackRejectSns", 38000, ReasonImplementation, "refused by the app's callback")

	// Profiles and conversations.
	ProfileBadParams     = row("ProfileBadParams", 40001, ReasonImplementation, "invalid parameters")
	ProfileAdminOnly     = row("ProfileAdminOnly", 40004, ReasonNotAuthorized, "only the app admin may do this")
	ProfileNoWrite       = row("ProfileNoWrite", 40008, ReasonNotAuthorized, "this field cannot be written")
	ProfileUnknownTag    = row("ProfileUnknownTag", 40009, ReasonImplementation, "unknown profile field")
	ProfileTooLong       = row("ProfileTooLong", 40601, ReasonImplementation, "profile value too long")
	ConversationBadParam = row("ConversationBadParam", 50001, ReasonImplementation, "invalid parameters")

	// All-member push (all_member_push).
	PushTooManyAccounts = row("PushTooManyAccounts", 90018, ReasonPayloadFormat, "too many accounts in one request")
	PushLifeTime        = row("PushLifeTime", 90026, ReasonPayloadFormat, "MsgLifeTime is over 7 days")
	PushBadAttr         = row("PushBadAttr", 90033, ReasonPayloadFormat, "invalid attribute, tag or condition")
)

// Table lists every row, in declaration order (docs, tests).
var Table []*Kind

func row(name string, code int, reason byte, text string) *Kind {
	k := &Kind{Name: name, Code: code, Reason: reason, Text: text}
	Table = append(Table, k)
	return k
}
