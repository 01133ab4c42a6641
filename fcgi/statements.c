/*
 * Every statement the service runs, in one table: its name, its SQL and
 * how it may be run (the flags, db.h). Each is prepared once on every
 * connection (conn.c); handlers name them by enum stmt (tracker.h).
 */
#include "db.h"

/* The columns of enum test_col, in order. */
#define TEST_COLS                                                              \
	"id, name, description, threshold, ts_us(start_time), "                \
	"ts_us(end_time), samples, cpu_sum, cpu_max, above_us, user_cpu, "     \
	"system_cpu, max_rss, tags, mem_samples, mem_sum, mem_max, "           \
	"exit_status"

const struct statement statements[STMT__COUNT] = {
    [STMT_PING] = {"ping", "SELECT 1", 0, REPEAT | NOWAIT},
    [STMT_USER_CREATE] = {"user_create",
			  "INSERT INTO users (username, password_hash, "
			  "email) VALUES ($1::text, $2::text, $3::text) "
			  "RETURNING id",
			  3, 0},
    [STMT_USER_FIND] = {"user_find",
			"SELECT id, password_hash FROM users "
			"WHERE username = $1::text",
			1, REPEAT},
    /* Only over the hash it replaces: never undoes a password change. */
    [STMT_USER_REHASH] = {"user_rehash",
			  "UPDATE users SET password_hash = $2::text "
			  "WHERE id = $1::bigint AND password_hash = $3::text",
			  3, REPEAT},
    [STMT_USER_HASH] = {"user_hash",
			"SELECT password_hash FROM users "
			"WHERE id = $1::bigint",
			1, REPEAT},
    [STMT_USER_PASSWORD_SET] = {"user_password_set",
				"SELECT user_password_set($1::bigint, "
				"$2::text, $3::text)",
				3, 0},
    [STMT_USER_REVOKE_ALL] = {"user_revoke_all",
			      "SELECT user_revoke_all($1::bigint)", 1, REPEAT},
    [STMT_SESSION_CREATE] = {"session_create",
			     "SELECT session_create($1::bigint, "
			     "to_timestamp($2::bigint), $3::int)",
			     3, 0},
    /* $2 NULL: a legacy token (no jti). */
    [STMT_TOKEN_CHECK] = {"token_check",
			  "SELECT token_check($1::bigint, $2::bigint)", 2,
			  REPEAT},
    [STMT_TOKEN_CREATE] = {"token_create",
			   "SELECT status, id, created_us, expires_us "
			   "FROM token_create($1::bigint, $2::text, "
			   "to_timestamp($3::bigint), $4::int)",
			   4, 0},
    [STMT_TOKEN_LIST] = {"token_list",
			 "SELECT id, name, ts_us(created_at), "
			 "ts_us(expires_at), ts_us(last_used_at) FROM tokens "
			 "WHERE user_id = $1::bigint AND name IS NOT NULL "
			 "AND expires_at > now() ORDER BY id DESC",
			 1, REPEAT},
    [STMT_TOKEN_DELETE] = {"token_delete",
			   "DELETE FROM tokens WHERE id = $2::bigint "
			   "AND user_id = $1::bigint RETURNING id",
			   2, 0},
    /* No row: the user has $6 active tests already (schema 6). */
    [STMT_TEST_CREATE] = {"test_create",
			  "SELECT " TEST_COLS " FROM test_create_tagged("
			  "$1::bigint, $2::text, $3::text, $4::float8, "
			  "$5::timestamptz, $6::int, $7::jsonb)",
			  7, 0},
    [STMT_TEST_GET] = {"test_get",
		       "SELECT " TEST_COLS " FROM tests "
		       "WHERE id = $2::bigint AND user_id = $1::bigint",
		       2, REPEAT},
    /* One row more than asked for tells whether there is a next page. The
     * cursor as one range (no "$2 IS NULL OR"): a generic plan of it is an
     * index range scan on (user_id, id), whatever page it is asked for. */
    [STMT_TEST_LIST] = {"test_list",
			"SELECT " TEST_COLS " FROM tests "
			"WHERE user_id = $1::bigint AND id < coalesce("
			"$2::bigint, 9223372036854775807) ORDER BY id DESC "
			"LIMIT $3::int + 1",
			3, REPEAT},
    /* The same of name $4 and tags $5 (each NULL: any), planned with
     * their values (schema: test_list_filtered). */
    [STMT_TEST_LIST_FILTERED] = {"test_list_filtered",
				 "SELECT " TEST_COLS " FROM test_list_filtered("
				 "$1::bigint, $2::bigint, $3::int, $4::text, "
				 "$5::jsonb) ORDER BY id DESC",
				 5, REPEAT},
    /* The test's columns (NULL for an unknown test), then the status. */
    [STMT_TEST_STOP] = {"test_stop",
			"SELECT " TEST_COLS ", s.status FROM test_finish_exit("
			"$1::bigint, $2::bigint, $3::timestamptz, $4::float8, "
			"$5::float8, $6::bigint, $7::smallint) s, "
			"LATERAL (SELECT (s.test).*) t",
			7, 0},
    /* No row for someone else's test or an unknown one (schema:
     * test_baseline). */
    [STMT_TEST_BASELINE] = {"test_baseline",
			    "SELECT runs, duration, time_above_threshold, "
			    "max_cpu_usage, mean_cpu_usage, max_mem_usage, "
			    "user_cpu, system_cpu, max_rss FROM test_baseline("
			    "$1::bigint, $2::bigint, $3::int)",
			    3, REPEAT},
    /* $5 NULL: no sample has a mem_usage. */
    [STMT_USAGE_ADD] = {"usage_add",
			"SELECT status, stored, above FROM usage_add_mem("
			"$1::bigint, $2::bigint, $3::timestamptz[], "
			"$4::float8[], $5::float8[])",
			5, BATCH | REPEAT},
    /* One row with NULL sample columns for a test without (more)
     * samples; no row at all for someone else's test. */
    [STMT_USAGE_LIST] = {"usage_list",
			 "SELECT ts_us(u.ts), u.cpu_usage, "
			 "u.cpu_usage > t.threshold, u.mem_usage FROM tests t "
			 "LEFT JOIN LATERAL usage_read_mem(t.id, "
			 "$3::timestamptz, $4::int) u ON true "
			 "WHERE t.id = $2::bigint AND t.user_id = $1::bigint "
			 "ORDER BY u.ts",
			 4, REPEAT},
};
