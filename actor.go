package medguard

// ActorKind says whether an actor is a person or a system.
type ActorKind string

// The kinds of actor.
const (
	UserActor   ActorKind = "user"    // a member of staff, signed in with a session
	APIKeyActor ActorKind = "api_key" // a system (the HIS, a lab system) with an API key
	SystemActor ActorKind = "system"  // medguard itself, e.g. the demo loader or a scheduled job
)

// Actor is who is acting: a signed-in user or a system's API key, as resolved
// by sign-in for one request. It carries what the access policy needs to know
// about them.
type Actor struct {
	Kind         ActorKind
	ID           string   // user or API key id
	Name         string   // username, or "apikey:<name>" for a key
	DepartmentID string   // the department's id; empty for none
	Department   string   // the department's code; empty for none
	Roles        []string // role names (for users)
	Scopes       []string // permissions granted to an API key (for keys)
	SessionID    string   // the session in use, if any
}

// Call is one request by an actor: who, from where, why, and under which
// request id. Every operation on patient data receives the Call, and the audit
// entry is made from it.
type Call struct {
	Actor     Actor
	IP        string
	RequestID string
	Purpose   string // purpose of use, a code (see policy.Purposes)
	// BreakGlassReason is the reason given for emergency access (紧急访问),
	// empty when the caller did not ask for break-glass.
	BreakGlassReason string
}
