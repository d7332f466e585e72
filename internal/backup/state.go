package backup

// State is the 3-2-1 state of an installation's backups: how many copies
// of the data exist (the live database and one per target holding a
// verified backup), on how many kinds of media, and how many off-site.
type State struct {
	Copies  int  `json:"copies"`
	Media   int  `json:"media"`
	OffSite int  `json:"off_site"`
	Met     bool `json:"met"` // at least 3 copies, 2 media, 1 off-site
}

// ComputeState computes the 3-2-1 state from the targets; failing, if
// not nil, names the targets whose last backup failed (they do not count).
func ComputeState(targets []Target, failing map[string]bool) State {
	s := State{Copies: 1}
	media := map[string]bool{"disk": true} // the live database
	for _, t := range targets {
		if failing[t.URL()] {
			continue
		}
		s.Copies++
		media[t.Media()] = true
		if t.OffSite() {
			s.OffSite++
		}
	}
	s.Media = len(media)
	s.Met = s.Copies >= 3 && s.Media >= 2 && s.OffSite >= 1
	return s
}
