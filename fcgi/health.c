/* GET /api/v1/health: 200 while the database answers, 503 otherwise. */
#include "tracker.h"

void
health_get(struct request *req)
{
	PGresult *res = NULL;
	enum db_status st = db_exec(req->w->db, STMT_PING, NULL, &res);
	PQclear(res);
	if (st != DB_OK) {
		respond_error(req, ERR_UNAVAILABLE,
			      "the database is unreachable");
		return;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("ok"));
	respond_json(req, 200, o);
}
