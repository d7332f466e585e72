package incidents

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
)

// Types of incident: a closed list, each with its Chinese and English
// words.
const (
	TypeDataLeak           = "data_leak"
	TypeTampering          = "tampering"
	TypeMalware            = "malware"
	TypeOutage             = "outage"
	TypeUnauthorizedAccess = "unauthorized_access"
	TypeDeviceLoss         = "device_loss"
	TypeMisoperation       = "misoperation"
	TypeOther              = "other"
)

// IncidentType is a type of incident in words.
type IncidentType struct {
	Code, NameZH, NameEN string
}

// Types lists the types of incident.
var Types = []IncidentType{
	{TypeDataLeak, "数据泄露", "Data leak"},
	{TypeTampering, "数据篡改", "Tampering"},
	{TypeMalware, "勒索病毒/恶意代码", "Ransomware or malware"},
	{TypeOutage, "系统故障/中断", "Outage"},
	{TypeUnauthorizedAccess, "越权访问/非法入侵", "Unauthorised access"},
	{TypeDeviceLoss, "设备或介质丢失", "Device or media lost"},
	{TypeMisoperation, "误操作", "Mis-operation"},
	{TypeOther, "其他", "Other"},
}

// TypeCodes lists the types' codes.
func TypeCodes() []string {
	out := make([]string, len(Types))
	for i, t := range Types {
		out[i] = t.Code
	}
	return out
}

// ValidType reports whether code is a type of incident.
func ValidType(code string) bool { return slices.Contains(TypeCodes(), code) }

// TypeWords says a type in Chinese, as the timeline records it.
func TypeWords(code string) string {
	for _, t := range Types {
		if t.Code == code {
			return t.NameZH
		}
	}
	return code
}

// typeOf checks the type given, or infers it from the criterion and facts.
func typeOf(typ, criterion string, facts *Facts) (string, error) {
	switch {
	case typ != "" && !ValidType(typ):
		return "", medguard.InvalidField("type", "type must be one of %s", strings.Join(TypeCodes(), ", "))
	case typ != "":
		return typ, nil
	case criterion == "core_data_leak" || facts != nil && facts.CoreDataLeaked:
		return TypeDataLeak, nil
	case criterion == "hospital_outage":
		return TypeOutage, nil
	case criterion == "single_record":
		return TypeMisoperation, nil
	}
	return TypeOther, nil
}

// CommanderRoles are the roles that may command an incident of each grade
// (应急指挥): grade 1 (重大) the leadership group (领导小组); grade 2 (较大)
// a security officer (信息安全专员); grade 3 (一般) the department or IT —
// an IT engineer (信息科) or a department head (科室主任). A more senior
// commander may always take a less serious incident: a security officer or
// a member of the leadership may command grade 3, the leadership grade 2.
var CommanderRoles = map[int][]string{
	Major:    {policy.Leadership},
	Serious:  {policy.SecurityOfficer, policy.Leadership},
	Ordinary: {policy.ITEngineer, policy.DeptHead, policy.SecurityOfficer, policy.Leadership},
}

// mayCommand reports whether one holding roles may command a grade.
func mayCommand(grade int, roles []string) bool {
	for _, r := range CommanderRoles[grade] {
		if slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

// commander is who commands an incident.
type commander struct{ id, name string }

// commanderFor resolves the commander named for an incident of grade
// (a username or a user id): an active member of staff, not frozen, whose
// roles may command the grade. Named nobody, it is the caller, if they may.
func (s *Service) commanderFor(ctx context.Context, call *medguard.Call, grade int, who string) (commander, error) {
	who = strings.TrimSpace(who)
	if who == "" || who == call.Actor.Name || who == call.Actor.ID {
		if !mayCommand(grade, call.Actor.Roles) {
			return commander{}, medguard.InvalidField("commander",
				"a grade %d incident is commanded by a holder of %s: name the commander", grade, strings.Join(CommanderRoles[grade], " or "))
		}
		return commander{id: call.Actor.ID, name: call.Actor.Name}, nil
	}
	if len(who) > 64 {
		return commander{}, medguard.InvalidField("commander", "commander must be a username or a user id")
	}
	var u *identity.User
	var err error
	if medguard.ValidID(who) {
		u, err = s.users.UserByID(ctx, who)
	} else {
		u, err = s.users.UserByUsername(ctx, who)
	}
	switch {
	case medguard.IsKind(err, medguard.NotFound):
		return commander{}, medguard.InvalidField("commander", "no member of staff has this name")
	case err != nil:
		return commander{}, err
	case u.Status != identity.Active || u.Frozen:
		return commander{}, medguard.InvalidField("commander", "the commander must be an active member of staff")
	case !mayCommand(grade, u.Roles):
		return commander{}, medguard.InvalidField("commander",
			"a grade %d incident is commanded by a holder of %s", grade, strings.Join(CommanderRoles[grade], " or "))
	}
	return commander{id: u.ID, name: u.Username}, nil
}

// CommanderChange names a new commander, and why.
type CommanderChange struct {
	Commander string `json:"commander"`
	Reason    string `json:"reason"`
}

// ChangeCommander hands an open incident whose grade is confirmed to
// another commander, with the reason (logged, on the timeline). The
// OnCommander hooks are told.
func (s *Service) ChangeCommander(ctx context.Context, call *medguard.Call, id string, cc CommanderChange) (*Incident, error) {
	in, err := s.change(ctx, call, id, "incident.commander_change", func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		reason, err := medguard.Text("reason", cc.Reason, MaxText, true)
		if err != nil {
			return nil, err
		}
		if in.GradeConfirmedAt == nil {
			return nil, medguard.InvalidField("grade", "confirm the grade first: it assigns the commander")
		}
		if strings.TrimSpace(cc.Commander) == "" {
			return nil, medguard.InvalidField("commander", "name the new commander")
		}
		cmd, err := s.commanderFor(ctx, call, in.Grade, cc.Commander)
		if err != nil {
			return nil, err
		}
		if cmd.id == in.commanderID && cmd.name == in.Commander {
			return nil, medguard.InvalidField("commander", "%s commands this incident already", cmd.name)
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			if err := stillOpen(ctx, tx, `UPDATE incidents SET commander_id = $1, commander = $2, commander_at = $3,
				last_update_at = $3 WHERE id = $4 AND status = 'open'`, cmd.id, cmd.name, medguard.Millis(now), id); err != nil {
				return err
			}
			return addUpdate(ctx, tx, k, id, index, "commander", "指挥 commander "+cmd.name+"："+reason,
				call.Actor.Name, call.Actor.ID, now)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.commanded(ctx, *in)
	return in, nil
}

// The alert rules of the incident notices (raised through the detection
// service's RaiseNotice by the application's wiring, so that the security
// office hears of them on every channel alerts go to).
const (
	// ReportedRule: an incident was reported; the security office is to
	// confirm its grade within 30 minutes. Key: the incident's id.
	ReportedRule = "incident_reported"
	// CommanderRule: an incident's commander was assigned (or changed).
	// Key: the incident's id; the explanation names the commander.
	CommanderRule = "incident_commander"
)

// bare is an incident without its free text, for hooks that pass it on to
// alerting channels.
func bare(in Incident) Incident {
	in.Title, in.Description, in.Analysis, in.Timeline, in.Actions, in.Files = "", "", nil, nil, nil, nil
	in.title, in.description, in.analysis = nil, nil, nil
	return in
}

// OnReported adds a hook told of every incident reported by a person (or
// opened from an anonymous report), once it is in the audit log. The
// incident carries no free text. An incident opened by a freeze is not
// told here: the freeze's own alert announced it.
func (s *Service) OnReported(hook func(context.Context, Incident)) { s.onReported.Add(hook) }

// OnCommander adds a hook told whenever an incident's commander is
// assigned (at the grade's confirmation) or changed. The incident carries
// no free text.
func (s *Service) OnCommander(hook func(context.Context, Incident)) { s.onCommander.Add(hook) }

func (s *Service) reported(ctx context.Context, in Incident) {
	s.onReported.Tell(ctx, bare(in))
}

func (s *Service) commanded(ctx context.Context, in Incident) {
	s.onCommander.Tell(ctx, bare(in))
}

// ListCommanded lists the incidents the caller commands (open, closed or
// all; default all), newest first: their commander reads them without
// incident.read (allow.incident_commander). Items carry their titles and
// deadlines, as List's.
func (s *Service) ListCommanded(ctx context.Context, call *medguard.Call, status string) ([]Incident, error) {
	out := []Incident{}
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.IncidentRead, AuditAction: "incident.list",
		Resource: policy.Resource{Type: "incident", Commander: call.Actor.ID}},
		func(policy.Decision) (audit.Mutation, error) {
			switch status {
			case "", "all":
				status = ""
			case Open, Closed:
			default:
				return nil, medguard.InvalidField("status", "status must be open, closed or all")
			}
			rows, err := s.db.QueryContext(ctx, `SELECT `+incidentColumns+` FROM incidents
				WHERE commander_id = $1 AND ($2 = '' OR status = $2) ORDER BY id DESC LIMIT 500`, call.Actor.ID, status)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				in, err := scanIncident(rows)
				if err != nil {
					return nil, err
				}
				out = append(out, *in)
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
			rows.Close()
			for i := range out {
				if err := s.open(ctx, &out[i], false, now); err != nil {
					return nil, err
				}
			}
			return nil, nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}
