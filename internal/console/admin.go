package console

import (
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/identity"
	"medguard/internal/policy"
)

// Users, roles and departments (用户与角色, 科室; SPEC §2–§3).
//
// The user list is a grid with search and totals; each user has a page
// from which an administrator does what the API does — asks for a role
// (a four-eyes request when the role opens patient data or privilege) or
// revokes one, moves the user to another department, resets the password
// (split between two people for such an account: the requester's half is
// shown once, here) or the second factor, lifts a sign-in lockout — and
// deactivates the account after a confirmation. Nobody is offered an
// operation on their own account. The forms that file four-eyes requests
// ask for the reason the approver reads. The roles page says each role's
// permissions in words and who approves granting it; the departments page
// names departments first, says which are restricted, and restricts one or
// files the request that lifts the restriction.

func init() {
	manage := []policy.Permission{policy.UserManage}
	read := []policy.Permission{policy.UserRead, policy.UserManage}
	depts := []policy.Permission{policy.DepartmentManage}
	register(
		Page{Method: "GET", Path: "/admin/users", Any: read, Nav: &Nav{Key: "nav.users", Order: 70}, Handle: usersPage},
		Page{Method: "GET", Path: "/admin/users/new", Any: manage, Handle: newUserPage},
		Page{Method: "POST", Path: "/admin/users", Any: manage, Handle: createUser},
		Page{Method: "GET", Path: "/admin/users/{id}", Any: read, Handle: userPage},
		Page{Method: "POST", Path: "/admin/users/{id}/roles", Any: manage, Handle: requestRole},
		Page{Method: "POST", Path: "/admin/users/{id}/roles/{role}/revoke", Any: manage, Handle: revokeRole},
		Page{Method: "POST", Path: "/admin/users/{id}/department", Any: manage, Handle: changeDepartment},
		Page{Method: "POST", Path: "/admin/users/{id}/password", Any: manage, Handle: resetPassword},
		Page{Method: "POST", Path: "/admin/users/{id}/totp", Any: manage, Handle: resetTOTP},
		Page{Method: "POST", Path: "/admin/users/{id}/unlock", Any: manage, Handle: unlockUser},
		Page{Method: "GET", Path: "/admin/users/{id}/deactivate", Any: manage, Handle: confirmDeactivate},
		Page{Method: "POST", Path: "/admin/users/{id}/deactivate", Any: manage, Handle: deactivateUser},
		Page{Method: "GET", Path: "/admin/roles", Any: []policy.Permission{policy.RoleRead},
			Nav: &Nav{Key: "nav.roles", Order: 75}, Handle: rolesPage},
		Page{Method: "GET", Path: "/admin/departments", Any: depts, Nav: &Nav{Key: "nav.departments", Order: 80}, Handle: departmentsPage},
		Page{Method: "POST", Path: "/admin/departments", Any: depts, Handle: createDepartment},
		Page{Method: "GET", Path: "/admin/departments/{code}", Any: depts, Handle: departmentPage},
		Page{Method: "POST", Path: "/admin/departments/{code}/restrict", Any: depts, Handle: restrictDepartment},
		Page{Method: "POST", Path: "/admin/departments/{code}/unrestrict", Any: depts, Handle: unrestrictDepartment},
	)
}

// roleOption is a role for a form.
type roleOption struct {
	Name string
	// Approval: a role that opens patient data or privilege is granted
	// only through a four-eyes approval.
	Approval bool
	Checked  bool
}

// roleOptions are the roles, checked as given.
func roleOptions(checked []string) []roleOption {
	var out []roleOption
	for _, r := range policy.DefaultRoles {
		out = append(out, roleOption{Name: r.Name, Approval: policy.NeedsApproval(r.Name), Checked: slices.Contains(checked, r.Name)})
	}
	return out
}

// usersFilter is the user list's search form (GET: staff names are not
// patient data).
type usersFilter struct {
	Q, Department, Role, Status string
}

// userStatuses are the user list's status filter.
var userStatuses = []string{"all", "active", "deactivated", "frozen", "locked", "no_mfa"}

type usersView struct {
	Filter      usersFilter
	Statuses    []string
	Departments []identity.Department
	Roles       []roleOption
	Grid        *Grid
	// Active and Deactivated count all users (not only the filtered).
	Active, Deactivated int
	CanManage           bool
	Error               *formError
}

func usersPage(rq *Request) error { return renderUsers(rq, http.StatusOK, nil) }

// pendingBySubject lists the caller's visible pending requests by the user
// they concern.
func pendingBySubject(rq *Request) (map[string][]approvals.Approval, error) {
	items, _, err := rq.Deps.Approvals.List(rq.Context(), rq.Call, approvals.Pending, "", MaxRows)
	if err != nil {
		return nil, err
	}
	out := map[string][]approvals.Approval{}
	for _, a := range items {
		if a.SubjectUserID != "" {
			out[a.SubjectUserID] = append(out[a.SubjectUserID], a)
		}
	}
	return out, nil
}

func renderUsers(rq *Request, status int, fe *formError) error {
	rq.pageAt("/admin/users")
	q := rq.URL.Query()
	f := usersFilter{Q: strings.TrimSpace(q.Get("q")), Department: q.Get("department"), Role: q.Get("role"),
		Status: statusFilter(q.Get("status"), userStatuses...)}
	us, next, err := rq.Deps.Identity.ListUsers(rq.Context(), rq.Call, "", MaxRows)
	if err != nil {
		return err
	}
	pending, err := pendingBySubject(rq)
	if err != nil {
		return err
	}
	v := usersView{Filter: f, Statuses: userStatuses, Departments: rq.c.dir.departments(), Roles: roleOptions(nil),
		CanManage: rq.Can(policy.UserManage), Error: fe}
	var rows []Row
	for _, u := range us {
		if u.Status == identity.Active {
			v.Active++
		} else {
			v.Deactivated++
		}
		if !f.matches(rq, u) {
			continue
		}
		rows = append(rows, userRow(rq, u, pending[u.ID], v.CanManage))
	}
	cols := []Column{
		{Key: "name", Title: "users.col.name", Sort: true},
		{Key: "username", Title: "users.col.username", Sort: true},
		{Key: "department", Title: "users.col.department", Sort: true},
		{Key: "roles", Title: "users.col.roles", Sort: true},
		{Key: "status", Title: "users.col.status", Sort: true},
		{Key: "mfa", Title: "users.col.mfa", Sort: true},
		{Key: "created", Title: "users.col.created", Sort: true},
	}
	if v.CanManage {
		cols = append(cols, Column{Key: "actions", Title: "users.col.actions"})
	}
	g, handled, err := rq.Grid("users", cols, rows, GridOptions{DefaultSort: "department", Capped: next != "",
		Export: "users", Empty: "users.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(status, "users", "users.title", v)
}

// matches reports whether the filter keeps u.
func (f usersFilter) matches(rq *Request, u *identity.User) bool {
	if f.Q != "" {
		q := strings.ToLower(f.Q)
		if !strings.Contains(strings.ToLower(u.DisplayName), q) && !strings.Contains(u.Username, q) &&
			!strings.Contains(strings.ToLower(rq.Dept(u.Department)), q) {
			return false
		}
	}
	switch {
	case f.Department == "-" && u.Department != "",
		f.Department != "" && f.Department != "-" && u.Department != f.Department,
		f.Role != "" && !slices.Contains(u.Roles, f.Role):
		return false
	}
	switch f.Status {
	case "active":
		return u.Status == identity.Active
	case "deactivated":
		return u.Status == identity.Deactivated
	case "frozen":
		return u.Frozen
	case "locked":
		return u.LockedUntil != nil
	case "no_mfa":
		return u.Status == identity.Active && !u.TOTPEnrolled
	}
	return true
}

// userRow is a user's row in the list.
func userRow(rq *Request, u *identity.User, pending []approvals.Approval, manage bool) Row {
	name := u.DisplayName
	if name == "" {
		name = u.Username
	}
	roles := make([]string, len(u.Roles))
	for i, r := range u.Roles {
		roles[i] = roleName(rq, r)
	}
	var waiting []string
	for _, a := range pending {
		if a.Kind == approvals.RoleGrant {
			var p approvals.RoleGrantPayload
			if err := json.Unmarshal(a.Payload, &p); err == nil {
				waiting = append(waiting, roleName(rq, p.Role))
			}
		}
	}
	rolesText := strings.Join(roles, rq.T("perm.separator"))
	rolesHTML := template.HTMLEscapeString(rolesText)
	if len(waiting) > 0 {
		w := rq.T("users.roles_pending", strings.Join(waiting, rq.T("perm.separator")))
		rolesText = strings.TrimSpace(rolesText + " " + w)
		rolesHTML += ` <span class="tag warn">` + template.HTMLEscapeString(w) + `</span>`
	}
	var status []string
	statusHTML := ""
	tag := func(text, class string) {
		status = append(status, text)
		statusHTML += `<span class="tag ` + class + `">` + template.HTMLEscapeString(text) + `</span> `
	}
	if u.Status == identity.Active {
		tag(rq.T("user.status.active"), "ok")
	} else {
		tag(rq.T("user.status.deactivated"), "muted")
	}
	if u.Frozen {
		tag(rq.T("users.frozen"), "bad")
	}
	if u.LockedUntil != nil {
		tag(rq.T("users.locked"), "bad")
	}
	mfa := Cell{Text: rq.T("users.mfa_enrolled")}
	if !u.TOTPEnrolled {
		mfa = Cell{Text: rq.T("users.mfa_missing"), Class: "bad"}
	}
	cells := []Cell{
		{Text: name, HTML: template.HTML(`<a href="/admin/users/` + template.HTMLEscapeString(u.ID) + `" id="user-` +
			template.HTMLEscapeString(u.Username) + `">` + template.HTMLEscapeString(name) + `</a>`)},
		{Text: u.Username, Class: "mono"},
		{Text: rq.Dept(u.Department)},
		{Text: rolesText, HTML: template.HTML(rolesHTML)},
		{Text: strings.Join(status, " "), HTML: template.HTML(statusHTML)},
		mfa,
		rq.TimeCell(u.CreatedAt),
	}
	if manage {
		c := Cell{}
		if u.Status == identity.Active && u.ID != rq.Call.Actor.ID {
			c.HTML = template.HTML(`<a class="button secondary small" href="/admin/users/` + template.HTMLEscapeString(u.ID) +
				`/deactivate">` + template.HTMLEscapeString(rq.T("users.deactivate")) + `</a>`)
		}
		cells = append(cells, c)
	}
	row := Row{Cells: cells}
	if u.Status != identity.Active {
		row.Class = "muted"
	}
	return row
}

// newUserView is the form that creates a user.
type newUserView struct {
	Departments []identity.Department
	Roles       []roleOption
	Form        map[string]string
	Error       *formError
}

func newUserPage(rq *Request) error {
	return renderNewUser(rq, http.StatusOK, map[string]string{}, nil, nil)
}

func renderNewUser(rq *Request, status int, form map[string]string, roles []string, fe *formError) error {
	return rq.Render(status, "user_new", "users.new_title", newUserView{Departments: rq.c.dir.departments(),
		Roles: roleOptions(roles), Form: form, Error: fe})
}

func createUser(rq *Request) error {
	form := map[string]string{}
	for _, k := range []string{"username", "display_name", "department", "reason"} {
		form[k] = rq.form(k)
	}
	roles := rq.PostForm["roles"]
	needs := slices.ContainsFunc(roles, policy.NeedsApproval)
	if needs && form["reason"] == "" {
		return renderNewUser(rq, http.StatusUnprocessableEntity, form, roles, &formError{Key: "users.error.reason"})
	}
	u, pending, err := rq.Deps.Identity.CreateUser(rq.Context(), rq.Call, identity.NewUser{Username: form["username"],
		DisplayName: form["display_name"], Department: form["department"], Roles: roles, Password: rq.PostFormValue("password")})
	if err != nil {
		if fe, ok := rq.asFormError(err, "users.error.create"); ok {
			return renderNewUser(rq, http.StatusUnprocessableEntity, form, roles, fe)
		}
		return err
	}
	rq.c.dir.forget()
	for _, role := range pending {
		if _, err := rq.Deps.Approvals.GrantRole(rq.Context(), rq.Call, u.ID, role, form["reason"]); err != nil {
			return err
		}
	}
	if len(pending) > 0 {
		return rq.Redirect("/admin/users/"+u.ID, "user_created_pending")
	}
	return rq.Redirect("/admin/users/"+u.ID, "user_created")
}

// userView is a user's page.
type userView struct {
	User *identity.User
	// Self: the caller's own account, which nobody changes.
	Self, CanManage bool
	// FourEyes: the account reaches patient data or privilege, so its
	// roles, department and credentials change through four-eyes requests.
	FourEyes    bool
	Pending     []decisionText
	Grantable   []roleOption
	Departments []identity.Department
	Error       *formError
	Form        map[string]string
	// Secret is the requester's half of a split password, shown once.
	Secret string
}

func userPage(rq *Request) error { return renderUser(rq, http.StatusOK, nil, nil, "") }

// renderUser shows a user's page, with an error of one of its forms or the
// requester's half of a password reset just asked for.
func renderUser(rq *Request, status int, fe *formError, form map[string]string, secret string) error {
	u, err := rq.Deps.Identity.GetUser(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	if form == nil {
		form = map[string]string{}
	}
	if rq.Person(u.ID) == u.ID {
		rq.c.dir.forget() // made a moment ago, through the API
	}
	v := userView{User: u, Self: u.ID == rq.Call.Actor.ID, CanManage: rq.Can(policy.UserManage) && u.Status == identity.Active,
		FourEyes: identity.NeedsFourEyes(u.Roles), Error: fe, Form: form, Secret: secret}
	pending, err := pendingBySubject(rq)
	if err != nil {
		return err
	}
	words := newDecisionWords(rq)
	for i := range pending[u.ID] {
		d, err := words.describe(&pending[u.ID][i])
		if err != nil {
			return err
		}
		v.Pending = append(v.Pending, d)
	}
	for _, r := range roleOptions(nil) {
		if !slices.Contains(u.Roles, r.Name) {
			v.Grantable = append(v.Grantable, r)
		}
	}
	for _, d := range rq.c.dir.departments() {
		if d.Code != u.Department {
			v.Departments = append(v.Departments, d)
		}
	}
	return rq.Render(status, "user", "user.title", v)
}

// userForm runs one of a user's forms: the reason is required when the
// form may file a four-eyes request; a refused input is shown on the
// user's page; done returns the flash of a success (and the request filed,
// if any).
func userForm(rq *Request, fields []string, needReason bool, errKey string,
	do func(id string, form map[string]string) (*approvals.Approval, string, error)) error {
	id := rq.PathValue("id")
	form := map[string]string{}
	for _, k := range fields {
		form[k] = rq.form(k)
	}
	if needReason && form["reason"] == "" {
		return renderUser(rq, http.StatusUnprocessableEntity, &formError{Key: "user.error.reason"}, form, "")
	}
	a, flash, err := do(id, form)
	if err != nil {
		if fe, ok := rq.asFormError(err, errKey); ok {
			return renderUser(rq, http.StatusUnprocessableEntity, fe, form, "")
		}
		return err
	}
	if a != nil && a.Secret != "" {
		// The requester's half of a split password: shown once, here.
		return renderUser(rq, http.StatusOK, nil, nil, a.Secret)
	}
	return rq.Redirect("/admin/users/"+idPath(id), flash)
}

func requestRole(rq *Request) error {
	return userForm(rq, []string{"role", "reason"}, true, "user.error.role",
		func(id string, f map[string]string) (*approvals.Approval, string, error) {
			if _, ok := policy.LookupRole(f["role"]); !ok {
				return nil, "", medguard.InvalidField("role", "choose a role")
			}
			a, err := rq.Deps.Approvals.GrantRole(rq.Context(), rq.Call, id, f["role"], f["reason"])
			if a != nil {
				return a, "role_requested", err
			}
			return nil, "role_granted", err
		})
}

func revokeRole(rq *Request) error {
	return userForm(rq, nil, false, "user.error.revoke",
		func(id string, _ map[string]string) (*approvals.Approval, string, error) {
			return nil, "role_revoked", rq.Deps.Identity.RevokeRole(rq.Context(), rq.Call, id, rq.PathValue("role"))
		})
}

func changeDepartment(rq *Request) error {
	return userForm(rq, []string{"department", "reason"}, true, "user.error.department",
		func(id string, f map[string]string) (*approvals.Approval, string, error) {
			a, err := rq.Deps.Approvals.ChangeDepartment(rq.Context(), rq.Call, id, f["department"], f["reason"])
			if err == nil {
				rq.c.dir.forget()
			}
			if a != nil {
				return a, "department_requested", err
			}
			return nil, "department_changed", err
		})
}

func resetPassword(rq *Request) error {
	return userForm(rq, []string{"reason"}, true, "user.error.password",
		func(id string, f map[string]string) (*approvals.Approval, string, error) {
			a, err := rq.Deps.Approvals.ResetPassword(rq.Context(), rq.Call, id, rq.PostFormValue("password"), f["reason"])
			return a, "password_reset", err
		})
}

func resetTOTP(rq *Request) error {
	return userForm(rq, []string{"reason"}, true, "user.error.totp",
		func(id string, f map[string]string) (*approvals.Approval, string, error) {
			a, err := rq.Deps.Approvals.ResetTOTP(rq.Context(), rq.Call, id, f["reason"])
			if a != nil {
				return a, "totp_requested", err
			}
			return nil, "totp_reset", err
		})
}

func unlockUser(rq *Request) error {
	return userForm(rq, nil, false, "user.error.unlock",
		func(id string, _ map[string]string) (*approvals.Approval, string, error) {
			return nil, "user_unlocked", rq.Deps.Identity.Unlock(rq.Context(), rq.Call, id)
		})
}

// confirmDeactivate asks before a user is deactivated: who, and what
// follows.
func confirmDeactivate(rq *Request) error {
	u, err := rq.Deps.Identity.GetUser(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	if u.ID == rq.Call.Actor.ID {
		return &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleOwnAccount, Message: "nobody deactivates their own account"}
	}
	return rq.Render(http.StatusOK, "deactivate", "deactivate.title", u)
}

func deactivateUser(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Identity.Deactivate(rq.Context(), rq.Call, id); err != nil {
		if fe, ok := rq.asFormError(err, "users.error.deactivate"); ok {
			return renderUsers(rq, http.StatusUnprocessableEntity, fe)
		}
		return err
	}
	return rq.Redirect("/admin/users", "user_deactivated")
}

// roleRow is a role as the roles page shows it: every role signs in with
// a second factor; Approval is who approves granting it.
type roleRow struct {
	Name        string
	Privileged  bool
	Clinical    bool
	Permissions []string // in words
	Approval    string   // catalog key suffix: "security", "security_or_head", "none"
}

func rolesPage(rq *Request) error {
	var rows []roleRow
	for _, r := range policy.DefaultRoles {
		row := roleRow{Name: r.Name, Privileged: r.Privileged, Clinical: r.Clinical, Approval: "none"}
		switch {
		case policy.DepartmentApprovable(r.Name):
			row.Approval = "security_or_head"
		case policy.NeedsApproval(r.Name):
			row.Approval = "security"
		}
		for _, p := range r.Permissions {
			row.Permissions = append(row.Permissions, permissionName(rq, string(p)))
		}
		rows = append(rows, row)
	}
	return rq.Render(http.StatusOK, "roles", "roles.title", rows)
}

type departmentsView struct {
	Grid  *Grid
	Form  map[string]string
	Error *formError
	// Restricted counts the restricted departments.
	Restricted int
}

func departmentsPage(rq *Request) error {
	return renderDepartments(rq, http.StatusOK, map[string]string{}, nil)
}

// departmentFacts are what the departments' pages show beside a
// department: whether it is restricted, its active staff, and a pending
// request to lift the restriction.
type departmentFacts struct {
	restricted map[string]bool
	staff      map[string]int
	lifting    map[string]bool
}

func loadDepartmentFacts(rq *Request) (*departmentFacts, error) {
	f := &departmentFacts{staff: map[string]int{}, lifting: map[string]bool{}}
	var err error
	if f.restricted, err = rq.Deps.Records.RestrictedDepartments(rq.Context()); err != nil {
		return nil, err
	}
	if rq.Can(policy.UserRead) {
		us, _, err := rq.Deps.Identity.ListUsers(rq.Context(), rq.Call, "", MaxRows)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			if u.Status == identity.Active && u.Department != "" {
				f.staff[u.Department]++
			}
		}
	}
	items, _, err := rq.Deps.Approvals.List(rq.Context(), rq.Call, approvals.Pending, "", MaxRows)
	if err != nil {
		return nil, err
	}
	for _, a := range items {
		if a.Kind == approvals.DepartmentUnlocked {
			f.lifting[a.TargetID] = true
		}
	}
	return f, nil
}

func renderDepartments(rq *Request, status int, form map[string]string, fe *formError) error {
	rq.pageAt("/admin/departments")
	ds, err := rq.Deps.Identity.ListDepartments(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	facts, err := loadDepartmentFacts(rq)
	if err != nil {
		return err
	}
	v := departmentsView{Form: form, Error: fe}
	var rows []Row
	for _, d := range ds {
		restricted := Cell{Text: rq.T("departments.open"), Sort: "1"}
		action := rq.T("departments.restrict_link")
		if facts.restricted[d.Code] {
			v.Restricted++
			restricted = statusCell(rq.T("departments.restricted"), "tag bad", "0")
			action = rq.T("departments.unrestrict_link")
			if facts.lifting[d.Code] {
				restricted = statusCell(rq.T("departments.restricted_lifting"), "tag warn", "0")
			}
		}
		href := "/admin/departments/" + d.Code
		rows = append(rows, Row{Cells: []Cell{
			{Text: d.Name, HTML: template.HTML(`<a href="` + template.HTMLEscapeString(href) + `" id="dept-` +
				template.HTMLEscapeString(d.Code) + `">` + template.HTMLEscapeString(d.Name) + `</a>`)},
			{Text: d.Code, Class: "mono"},
			restricted,
			NumCell(facts.staff[d.Code]),
			rq.TimeCell(d.CreatedAt),
			{Text: action, Href: href},
		}})
	}
	cols := []Column{
		{Key: "name", Title: "departments.col.name", Sort: true},
		{Key: "code", Title: "departments.col.code", Sort: true},
		{Key: "restricted", Title: "departments.col.restricted", Sort: true},
		{Key: "staff", Title: "departments.col.staff", Sort: true, Num: true},
		{Key: "created", Title: "departments.col.created", Sort: true},
		{Key: "actions", Title: "departments.col.actions"},
	}
	g, handled, err := rq.Grid("departments", cols, rows, GridOptions{DefaultSort: "name", Export: "departments",
		Empty: "departments.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(status, "departments", "departments.title", v)
}

func createDepartment(rq *Request) error {
	form := map[string]string{"code": rq.form("code"), "name": rq.form("name")}
	if _, _, err := rq.Deps.Approvals.CreateDepartment(rq.Context(), rq.Call, form["code"], form["name"], nil); err != nil {
		if fe, ok := rq.asFormError(err, "departments.error.create"); ok {
			return renderDepartments(rq, http.StatusUnprocessableEntity, form, fe)
		}
		return err
	}
	rq.c.dir.forget()
	return rq.Redirect("/admin/departments", "department_created")
}

// departmentView is one department's page: its restriction, and the form
// that sets it or asks to lift it.
type departmentView struct {
	Department identity.Department
	Restricted bool
	Lifting    bool
	Staff      int
	Reason     string
	Error      *formError
}

func departmentPage(rq *Request) error { return renderDepartment(rq, http.StatusOK, "", nil) }

func renderDepartment(rq *Request, status int, reason string, fe *formError) error {
	ds, err := rq.Deps.Identity.ListDepartments(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ds, func(d identity.Department) bool { return d.Code == rq.PathValue("code") })
	if i < 0 {
		return &notFound
	}
	facts, err := loadDepartmentFacts(rq)
	if err != nil {
		return err
	}
	d := ds[i]
	return rq.Render(status, "department", "department.title", departmentView{Department: d, Restricted: facts.restricted[d.Code],
		Lifting: facts.lifting[d.Code], Staff: facts.staff[d.Code], Reason: reason, Error: fe})
}

func restrictDepartment(rq *Request) error {
	code := rq.PathValue("code")
	if _, err := rq.Deps.Approvals.SetDepartmentRestricted(rq.Context(), rq.Call, code, true, ""); err != nil {
		if fe, ok := rq.asFormError(err, "department.error"); ok {
			return renderDepartment(rq, http.StatusUnprocessableEntity, "", fe)
		}
		return err
	}
	return rq.Redirect("/admin/departments", "department_restricted")
}

func unrestrictDepartment(rq *Request) error {
	code, reason := rq.PathValue("code"), rq.form("reason")
	if reason == "" {
		return renderDepartment(rq, http.StatusUnprocessableEntity, reason, &formError{Key: "department.error.reason"})
	}
	if _, err := rq.Deps.Approvals.SetDepartmentRestricted(rq.Context(), rq.Call, code, false, reason); err != nil {
		if fe, ok := rq.asFormError(err, "department.error"); ok {
			return renderDepartment(rq, http.StatusUnprocessableEntity, reason, fe)
		}
		return err
	}
	return rq.Redirect("/admin/departments", "unrestrict_requested")
}
