package incidents

import (
	"context"
	"fmt"
	"time"

	"medguard"
)

// RetrainingOrder orders a member of staff's retraining as the sanction of
// an accountability case: the training register (training.Service's
// OrderRetraining), which logs it as the case's decider and closes the
// person's record access until they pass the course again.
type RetrainingOrder func(ctx context.Context, call *medguard.Call, userID, caseID, reason string) error

// SetRetraining gives the cases the training register (nil: a decision
// that orders retraining fails after being recorded, saying so). Call it
// while wiring.
func (s *Service) SetRetraining(order RetrainingOrder) { s.retraining = order }

// orderRetraining orders the retraining a decision asked for; the decision
// itself is recorded already.
func (s *Service) orderRetraining(ctx context.Context, call *medguard.Call, c *Case) error {
	if s.retraining == nil {
		return &medguard.Error{Kind: medguard.Conflict, Code: "no_training_register",
			Message: "the decision is recorded, but no training register takes the retraining order"}
	}
	return s.retraining(ctx, call, c.SubjectUserID, c.ID,
		fmt.Sprintf("accountability case %s upheld (grade %d): retraining ordered", c.ID, c.FinalGrade))
}

// UpheldCases counts, by user id, the accountability cases upheld against
// each member of staff that were decided in [from, to) and not overturned
// on appeal: the incidents factor of the training register's quarterly
// staff assessment.
func (s *Service) UpheldCases(ctx context.Context, from, to time.Time) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT subject_user_id, count(*) FROM accountability_cases WHERE outcome = $1
		AND decided_at >= $2 AND decided_at < $3 AND (review_outcome IS NULL OR review_outcome <> $4) GROUP BY subject_user_id`,
		Upheld, medguard.Millis(from), medguard.Millis(to), Overturned)
	if err != nil {
		return nil, medguard.Wrap("incidents.UpheldCases", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, medguard.Wrap("incidents.UpheldCases", err)
		}
		out[id] = n
	}
	return out, medguard.Wrap("incidents.UpheldCases", rows.Err())
}
