package console

import (
	"net/http"
	"slices"

	"medguard/internal/identity"
	"medguard/internal/policy"
)

// Users, roles and departments (用户与角色, 科室; SPEC §2–§3): the user
// list with the form that creates one — a privileged role asked for is not
// granted but filed as a four-eyes request, exactly as the API does —
// deactivation, the roles in force with their permissions, and the
// departments.

func init() {
	manage := []policy.Permission{policy.UserManage}
	register(
		Page{Method: "GET", Path: "/admin/users", Any: []policy.Permission{policy.UserRead, policy.UserManage},
			Nav: &Nav{Key: "nav.users", Order: 70}, Handle: usersPage},
		Page{Method: "POST", Path: "/admin/users", Any: manage, Handle: createUser},
		Page{Method: "POST", Path: "/admin/users/{id}/deactivate", Any: manage, Handle: deactivateUser},
		Page{Method: "GET", Path: "/admin/roles", Any: []policy.Permission{policy.RoleRead},
			Nav: &Nav{Key: "nav.roles", Order: 75}, Handle: rolesPage},
		Page{Method: "GET", Path: "/admin/departments", Any: []policy.Permission{policy.DepartmentManage},
			Nav: &Nav{Key: "nav.departments", Order: 80}, Handle: departmentsPage},
		Page{Method: "POST", Path: "/admin/departments", Any: []policy.Permission{policy.DepartmentManage}, Handle: createDepartment},
	)
}

// roleOption is a role for the create form.
type roleOption struct {
	Name       string
	Privileged bool
	// Approval: a role that opens patient data or privilege is granted
	// only through a four-eyes approval.
	Approval bool
	Checked  bool
}

type usersView struct {
	Users       []*identity.User
	Next        string
	Departments []identity.Department
	Roles       []roleOption
	Form        map[string]string
	CanManage   bool
	Pending     int // four-eyes requests filed by the last creation
	Error       *formError
}

func usersPage(rq *Request) error {
	return renderUsers(rq, http.StatusOK, map[string]string{}, nil, nil)
}

func renderUsers(rq *Request, status int, form map[string]string, roles []string, fe *formError) error {
	us, next, err := rq.Deps.Identity.ListUsers(rq.Context(), rq.Call, rq.Cursor(), PageSize)
	if err != nil {
		return err
	}
	v := usersView{Users: us, Next: next, Form: form, CanManage: rq.Can(policy.UserManage), Error: fe}
	if v.CanManage {
		ds, err := rq.Deps.Identity.ListDepartments(rq.Context(), rq.Call)
		if err != nil && !hidden(err) {
			return err
		}
		v.Departments = ds
		for _, r := range policy.DefaultRoles {
			v.Roles = append(v.Roles, roleOption{Name: r.Name, Privileged: r.Privileged, Approval: policy.NeedsApproval(r.Name),
				Checked: slices.Contains(roles, r.Name)})
		}
	}
	return rq.Render(status, "users", "users.title", v)
}

func createUser(rq *Request) error {
	form := map[string]string{}
	for _, k := range []string{"username", "display_name", "department"} {
		form[k] = rq.form(k)
	}
	if err := rq.ParseForm(); err != nil {
		return err
	}
	roles := rq.PostForm["roles"]
	u, pending, err := rq.Deps.Identity.CreateUser(rq.Context(), rq.Call, identity.NewUser{Username: form["username"],
		DisplayName: form["display_name"], Department: form["department"], Roles: roles, Password: rq.PostFormValue("password")})
	if err != nil {
		if fe, ok := rq.asFormError(err, "users.error.create"); ok {
			return renderUsers(rq, http.StatusUnprocessableEntity, form, roles, fe)
		}
		return err
	}
	for _, role := range pending {
		if _, err := rq.Deps.Approvals.GrantRole(rq.Context(), rq.Call, u.ID, role, "requested when the user was created"); err != nil {
			return err
		}
	}
	if len(pending) > 0 {
		return rq.Redirect("/admin/users", "user_created_pending")
	}
	return rq.Redirect("/admin/users", "user_created")
}

func deactivateUser(rq *Request) error {
	if _, err := rq.Deps.Identity.Deactivate(rq.Context(), rq.Call, rq.PathValue("id")); err != nil {
		if fe, ok := rq.asFormError(err, "users.error.deactivate"); ok {
			return renderUsers(rq, http.StatusUnprocessableEntity, map[string]string{}, nil, fe)
		}
		return err
	}
	return rq.Redirect("/admin/users", "user_deactivated")
}

// roleRow is a role as the roles page shows it: every role signs in with
// a second factor; Approval is who approves granting it.
type roleRow struct {
	policy.Role
	MFARequired bool
	Approval    string // catalog key suffix: "security", "security_or_head", "none"
}

func rolesPage(rq *Request) error {
	var rows []roleRow
	for _, r := range policy.DefaultRoles {
		row := roleRow{Role: r, MFARequired: true, Approval: "none"}
		switch {
		case policy.DepartmentApprovable(r.Name):
			row.Approval = "security_or_head"
		case policy.NeedsApproval(r.Name):
			row.Approval = "security"
		}
		rows = append(rows, row)
	}
	return rq.Render(http.StatusOK, "roles", "roles.title", rows)
}

type departmentsView struct {
	Departments []identity.Department
	Form        map[string]string
	Error       *formError
}

func departmentsPage(rq *Request) error {
	return renderDepartments(rq, http.StatusOK, map[string]string{}, nil)
}

func renderDepartments(rq *Request, status int, form map[string]string, fe *formError) error {
	ds, err := rq.Deps.Identity.ListDepartments(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	return rq.Render(status, "departments", "departments.title", departmentsView{Departments: ds, Form: form, Error: fe})
}

func createDepartment(rq *Request) error {
	form := map[string]string{"code": rq.form("code"), "name": rq.form("name")}
	if _, _, err := rq.Deps.Approvals.CreateDepartment(rq.Context(), rq.Call, form["code"], form["name"], nil); err != nil {
		if fe, ok := rq.asFormError(err, "departments.error.create"); ok {
			return renderDepartments(rq, http.StatusUnprocessableEntity, form, fe)
		}
		return err
	}
	return rq.Redirect("/admin/departments", "department_created")
}
