package console

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"medguard"
	"medguard/internal/assets"
	"medguard/internal/policy"
	"medguard/internal/vulns"
)

// The asset register (资产台账, issue 13): the list of assets as a grid
// (filtered by kind, department, the records system and end of support,
// sorted, exported, printed), equipment past its end of support marked,
// each asset's last scan and open vulnerabilities when the reader may see
// them; the forms to register an asset and to import the register from a
// CSV file; an asset's page with its facts, its vulnerabilities and scans,
// the form to change it and the form to import a scanner report for it.
// The services decide and log; these pages only show and post.

func init() {
	register(
		Page{Method: "GET", Path: "/assets", Any: []policy.Permission{policy.AssetRead}, Nav: &Nav{Key: "nav.assets", Order: 47},
			Handle: assetsPage},
		Page{Method: "POST", Path: "/assets", Any: []policy.Permission{policy.AssetManage}, Handle: createAsset},
		Page{Method: "POST", Path: "/assets/import", Any: []policy.Permission{policy.AssetManage}, MaxForm: assets.MaxImportBytes + 64<<10,
			Handle: importAssets},
		Page{Method: "GET", Path: "/assets/{id}", Any: []policy.Permission{policy.AssetRead}, Handle: assetPage},
		Page{Method: "POST", Path: "/assets/{id}", Any: []policy.Permission{policy.AssetManage}, Handle: updateAsset},
	)
}

// assetFilter is the register's filters as given.
type assetFilter struct {
	Kind, Department, Records, Text string
	PastEOS                         bool
}

type assetsView struct {
	Filter      assetFilter
	Kinds       []option
	Departments []option
	Classes     []option
	Grid        *Grid
	CanManage   bool
	// Late counts the assets in use not scanned within the cadence (when
	// the reader may see scans).
	Late   int
	Result *assets.ImportSummary
	Error  string
}

func (rq *Request) assetOptions() (kinds, depts, classes []option) {
	for _, k := range assets.Kinds {
		kinds = append(kinds, option{Value: k, Text: rq.T("asset.kind." + k)})
	}
	for _, d := range rq.c.dir.departments() {
		depts = append(depts, option{Value: d.Code, Text: d.Name})
	}
	for _, c := range policy.Classifications {
		classes = append(classes, option{Value: c, Text: rq.T("class." + c)})
	}
	return kinds, depts, classes
}

func assetsPage(rq *Request) error { return renderAssets(rq, http.StatusOK, nil, "") }

func renderAssets(rq *Request, status int, result *assets.ImportSummary, problem string) error {
	q := rq.URL.Query()
	f := assetFilter{Kind: q.Get("kind"), Department: q.Get("department"), Records: q.Get("records"), Text: strings.TrimSpace(q.Get("q")),
		PastEOS: q.Get("eos") == "1"}
	if rq.Method == http.MethodPost {
		f = assetFilter{}
	}
	query := assets.Query{PastEndOfSupport: f.PastEOS, Text: f.Text, Limit: MaxRows}
	if slices.Contains(assets.Kinds, f.Kind) {
		query.Kind = f.Kind
	} else {
		f.Kind = ""
	}
	if len(f.Department) <= 32 {
		query.Department = f.Department
	}
	switch f.Records {
	case "yes", "no":
		b := f.Records == "yes"
		query.RecordsSystem = &b
	default:
		f.Records = ""
	}
	if len([]rune(f.Text)) > 100 {
		f.Text, query.Text = "", ""
	}
	list, next, err := rq.Deps.Assets.List(rq.Context(), rq.Call, query)
	if err != nil {
		return err
	}
	v := assetsView{Filter: f, CanManage: rq.Can(policy.AssetManage), Result: result, Error: problem}
	v.Kinds, v.Departments, v.Classes = rq.assetOptions()
	scans := map[string]vulns.CadenceItem{}
	seeScans := rq.Can(policy.VulnRead) && rq.Deps.Vulns != nil
	if seeScans {
		items, err := rq.Deps.Vulns.Cadence(rq.Context(), rq.Call, false)
		if err != nil {
			return err
		}
		for _, it := range items {
			scans[it.AssetID] = it
			if it.Late {
				v.Late++
			}
		}
	}
	cols := []Column{{Key: "code", Title: "assets.col.code", Sort: true}, {Key: "name", Title: "assets.col.name", Sort: true},
		{Key: "kind", Title: "assets.col.kind", Sort: true}, {Key: "department", Title: "assets.col.department", Sort: true},
		{Key: "owner", Title: "assets.col.owner", Sort: true}, {Key: "location", Title: "assets.col.location"},
		{Key: "class", Title: "assets.col.classification", Sort: true}, {Key: "labels", Title: "assets.col.labels"},
		{Key: "eos", Title: "assets.col.end_of_support", Sort: true}, {Key: "records", Title: "assets.col.records_system", Sort: true}}
	if seeScans {
		cols = append(cols, Column{Key: "scan", Title: "assets.col.last_scan", Sort: true}, Column{Key: "open", Title: "assets.col.open", Sort: true, Num: true})
	}
	rows := make([]Row, 0, len(list))
	for _, a := range list {
		r := Row{Cells: []Cell{{Text: a.Code, Href: "/assets/" + a.ID, Class: "nowrap"}, {Text: a.Name}, {Text: rq.T("asset.kind." + a.Kind)},
			{Text: rq.Dept(a.Department)}, {Text: rq.assetOwner(a.Owner)}, {Text: a.Location}, {Text: rq.T("class." + a.Classification)},
			{Text: strings.Join(a.Labels, "、")}, rq.eosCell(&a), rq.yesNo(a.RecordsSystem)}}
		if a.Status == assets.Retired {
			r.Class = "muted"
			r.Cells[1].Text += rq.T("assets.retired_suffix")
		} else if a.PastEndOfSupport {
			r.Class = "bad"
		}
		if seeScans {
			it := scans[a.ID]
			cell := Cell{Text: rq.T("assets.never_scanned"), Class: "bad", Sort: "0"}
			switch {
			case a.Status == assets.Retired:
				cell = Cell{}
			case it.LastScannedAt != nil:
				cell = rq.TimeCell(*it.LastScannedAt)
				if it.Late {
					cell.Class += " bad"
				}
			}
			r.Cells = append(r.Cells, cell, NumCell(it.Open))
		}
		rows = append(rows, r)
	}
	g, handled, err := rq.Grid("assets", cols, rows, GridOptions{DefaultSort: "code", Capped: next != "", Export: "assets", Empty: "assets.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(status, "assets", "assets.title", v)
}

// assetOwner names an asset's owner by name and department, or says none.
func (rq *Request) assetOwner(username string) string {
	if username == "" {
		return rq.T("assets.no_owner")
	}
	return rq.Person(username)
}

func (rq *Request) yesNo(b bool) Cell {
	if b {
		return tagCell(rq.T("assets.yes"), "warn")
	}
	return Cell{Text: rq.T("assets.no"), Class: "muted"}
}

// eosCell shows an end of support, marked once past.
func (rq *Request) eosCell(a *assets.Asset) Cell {
	if a.EndOfSupport == "" {
		return Cell{Text: rq.T("assets.eos_unknown"), Class: "muted", Sort: "9999"}
	}
	if a.PastEndOfSupport {
		c := tagCell(rq.T("assets.eos_past", a.EndOfSupport), "bad")
		c.Sort = a.EndOfSupport
		return c
	}
	return Cell{Text: a.EndOfSupport, Sort: a.EndOfSupport, Class: "nowrap"}
}

// assetForm reads the fields of the register's form.
func assetForm(rq *Request) assets.NewAsset {
	return assets.NewAsset{Code: rq.PostFormValue("code"), Name: rq.PostFormValue("name"), Kind: rq.PostFormValue("kind"),
		Owner: strings.TrimSpace(rq.PostFormValue("owner")), Department: rq.PostFormValue("department"), Location: rq.PostFormValue("location"),
		Address: rq.PostFormValue("address"), Classification: rq.PostFormValue("classification"),
		Labels:       strings.FieldsFunc(rq.PostFormValue("labels"), func(r rune) bool { return r == ';' || r == '；' || r == '、' || r == ',' || r == '，' }),
		EndOfSupport: rq.PostFormValue("end_of_support"), RecordsSystem: rq.PostFormValue("records_system") == "yes"}
}

func createAsset(rq *Request) error {
	a, err := rq.Deps.Assets.Create(rq.Context(), rq.Call, assetForm(rq))
	if err != nil {
		return err
	}
	return rq.Redirect("/assets/"+a.ID, "asset_created")
}

// uploaded reads the file of a form's file field, whole, from memory.
func uploaded(rq *Request, field string) ([]byte, error) {
	if rq.MultipartForm == nil || len(rq.MultipartForm.File[field]) == 0 {
		return nil, medguard.InvalidField(field, "choose a file")
	}
	f, err := rq.MultipartForm.File[field][0].Open()
	if err != nil {
		return nil, &medguard.Error{Kind: medguard.Malformed, Message: "the file could not be read"}
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, &medguard.Error{Kind: medguard.Malformed, Message: "the file could not be read"}
	}
	return b, nil
}

// importAssets imports the register from the uploaded CSV file; a file
// with errors is shown back with them, line by line, and nothing changes.
func importAssets(rq *Request) error {
	data, err := uploaded(rq, "file")
	if err == nil {
		var sum *assets.ImportSummary
		if sum, err = rq.Deps.Assets.Import(rq.Context(), rq.Call, data); err == nil {
			return renderAssets(rq, http.StatusOK, sum, "")
		}
	}
	if me := (*medguard.Error)(nil); errors.As(err, &me) && (me.Kind == medguard.Invalid || me.Kind == medguard.TooLarge) {
		return renderAssets(rq, http.StatusUnprocessableEntity, nil, me.Message)
	}
	return err
}

type assetView struct {
	A           *assets.Asset
	CanManage   bool
	CanImport   bool
	Kinds       []option
	Departments []option
	Classes     []option
	Formats     []option
	Owner       string
	Labels      string
	Vulns       *Grid
	Scans       []vulns.Scan
	Cadence     *vulns.CadenceItem
}

func assetPage(rq *Request) error {
	a, err := rq.Deps.Assets.Get(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	v := assetView{A: a, CanManage: rq.Can(policy.AssetManage), CanImport: rq.Can(policy.VulnManage) && a.Status == assets.InUse,
		Owner: rq.assetOwner(a.Owner), Labels: strings.Join(a.Labels, "；")}
	v.Kinds, v.Departments, v.Classes = rq.assetOptions()
	v.Formats = rq.formatOptions()
	if rq.Can(policy.VulnRead) && rq.Deps.Vulns != nil {
		list, next, err := rq.Deps.Vulns.List(rq.Context(), rq.Call, vulns.Query{AssetID: a.ID, Limit: MaxRows})
		if err != nil {
			return err
		}
		cols, rows := rq.vulnRows(list, false)
		g, handled, err := rq.Grid("asset-vulns", cols, rows, GridOptions{DefaultSort: "due", Capped: next != "", Export: "vulns",
			Empty: "vulns.none"})
		if err != nil || handled {
			if err == nil {
				err = errHandled
			}
			return err
		}
		v.Vulns = g
		if v.Scans, err = rq.Deps.Vulns.Scans(rq.Context(), rq.Call, vulns.ScanQuery{AssetID: a.ID, Limit: 20}); err != nil {
			return err
		}
		items, err := rq.Deps.Vulns.Cadence(rq.Context(), rq.Call, false)
		if err != nil {
			return err
		}
		for i := range items {
			if items[i].AssetID == a.ID {
				v.Cadence = &items[i]
			}
		}
	}
	return rq.Render(http.StatusOK, "asset", "asset.title", v)
}

func updateAsset(rq *Request) error {
	in := assetForm(rq)
	status := rq.PostFormValue("status")
	labels := in.Labels
	records := in.RecordsSystem
	ch := assets.Changes{Name: &in.Name, Kind: &in.Kind, Owner: &in.Owner, Department: &in.Department, Location: &in.Location,
		Address: &in.Address, Classification: &in.Classification, Labels: &labels, EndOfSupport: &in.EndOfSupport,
		RecordsSystem: &records, Status: &status}
	id := rq.PathValue("id")
	if _, err := rq.Deps.Assets.Update(rq.Context(), rq.Call, id, ch); err != nil {
		return err
	}
	return rq.Redirect("/assets/"+url.PathEscape(id), "asset_updated")
}
