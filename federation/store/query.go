package store

import (
	"context"
	"database/sql"
	"fmt"
)

// queryList runs q on the read pool and scans every row with scan. op names the operation
// in errors ("list events"). The result is never nil, so an empty listing encodes as [].
func queryList[T any](ctx context.Context, db *sql.DB, op, q string, args []any, scan func(*sql.Rows) (T, error)) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	return out, nil
}
