/*
 * admin_cmd_keys.c - countersign-admin's commands for the authority's
 * credentials: the signing keys orders name (`key add`, `key list`) and
 * the admin tokens of the web console and scripts (`token create`,
 * `token list`, `token disable`).
 *
 * A token is printed once, by `token create`, on stdout alone so that a
 * script can capture it; the reminder to store it goes to stderr.
 */
#include "admin_cli.h"
#include "countersign/v1/admin.pb-c.h"
#include "cs_crypto.h"

#include <getopt.h>
#include <string.h>

static void
key_json(struct cs_json *j, const Countersign__V1__KeyInfo *k)
{
	cs_json_open(j, NULL);
	cs_json_str(j, "label", k->label);
	cs_json_str(j, "algorithm", k->algorithm);
	cs_json_bytes(j, "key_id", k->key_id.data, k->key_id.len);
	cs_json_bytes(j, "public_key_der", k->public_key_der.data,
	    k->public_key_der.len);
	cs_json_close(j);
}

static void
key_line(const Countersign__V1__KeyInfo *k)
{
	printf("%-9s  ", k->algorithm);
	admin_cli_hex(stdout, k->key_id.data, k->key_id.len);
	/* Key ids are 8 bytes; pad shorter ones to keep the column. */
	for (size_t i = k->key_id.len; i < CS_KEY_ID_LEN; i++) {
		fputs("  ", stdout);
	}
	printf("  %s\n", k->label);
}

int
admin_cmd_key_add(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	Countersign__V1__AddKeyRequest req =
	    COUNTERSIGN__V1__ADD_KEY_REQUEST__INIT;
	Countersign__V1__KeyReply *rep = NULL;
	struct admin              *a   = ctx;
	int                        rv;

	if (admin_cli_one_opt_done(a, cmd, argc, argv, "label", 'l',
	    &req.label, &rv) ||
	    (rv = admin_cli_call(a, "AddKey", &req, &rep)) != ADMIN_EXIT_OK) {
		goto out;
	}
	if (a->cli.json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		if (rep->key != NULL) {
			key_json(&j, rep->key);
		} else {
			fputs("null", stdout);
		}
		putchar('\n');
	} else if (rep->key != NULL) {
		printf("key added; orders may now name it:\n");
		key_line(rep->key);
	}
out:
	admin_cli_free(rep);
	return rv;
}

int
admin_cmd_key_list(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	Countersign__V1__ListKeysRequest req =
	    COUNTERSIGN__V1__LIST_KEYS_REQUEST__INIT;
	Countersign__V1__ListKeysReply *rep = NULL;
	struct admin                   *a   = ctx;
	int                             rv;

	if (admin_cli_args_done(a, cmd, argc, argv, "h", 0, &rv) ||
	    (rv = admin_cli_call(a, "ListKeys", &req, &rep)) !=
	    ADMIN_EXIT_OK) {
		goto out;
	}
	if (a->cli.json) {
		struct cs_json j;
		admin_cli_list_begin(&j, "keys");
		for (size_t i = 0; i < rep->n_keys; i++) {
			key_json(&j, rep->keys[i]);
		}
		admin_cli_list_end(&j);
		goto out;
	}
	printf("%-9s  %-16s  %s\n", "ALGORITHM", "KEY ID", "LABEL");
	for (size_t i = 0; i < rep->n_keys; i++) {
		key_line(rep->keys[i]);
	}
	if (rep->n_keys == 0) {
		printf("(no keys: add one with " ADMIN_PROG " key add)\n");
	}
out:
	admin_cli_free(rep);
	return rv;
}

int
admin_cmd_token_create(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	static const struct option longopts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"role", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	Countersign__V1__CreateTokenRequest req =
	    COUNTERSIGN__V1__CREATE_TOKEN_REQUEST__INIT;
	Countersign__V1__CreateTokenReply *rep = NULL;
	struct admin                      *a   = ctx;
	int                                opt, rv;

	while ((opt = getopt_long(argc, argv, "n:r:h", longopts, NULL)) !=
	    -1) {
		if (opt == 'n') {
			req.name = optarg;
		} else if (opt == 'r') {
			req.role = optarg;
		} else {
			return cs_cli_other_opt(&a->cli, cmd, opt);
		}
	}
	if ((rv = cs_cli_positional(&a->cli, cmd, argc, argv, 0)) !=
	    ADMIN_EXIT_OK) {
		return rv;
	}
	if (req.name[0] == '\0') {
		return cs_cli_usage(&a->cli, cmd, "--name is required");
	}
	if (strcmp(req.role, "viewer") != 0 &&
	    strcmp(req.role, "officer") != 0) {
		return cs_cli_usage(&a->cli, cmd, "--role viewer or --role "
		    "officer is required");
	}
	if ((rv = admin_cli_call(a, "CreateToken", &req, &rep)) !=
	    ADMIN_EXIT_OK) {
		goto out;
	}
	if (a->cli.json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_str(&j, "token", rep->token);
		cs_json_str(&j, "name", rep->name);
		cs_json_str(&j, "role", rep->role);
		cs_json_close(&j);
		putchar('\n');
	} else {
		printf("%s\n", rep->token);
		fprintf(stderr, "token \"%s\" (%s) created.  Store it now "
		    "(e.g. in a password manager): it is shown this once and "
		    "the authority keeps only its hash.\n", rep->name,
		    rep->role);
	}
out:
	admin_cli_free(rep);
	return rv;
}

int
admin_cmd_token_disable(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	Countersign__V1__DisableTokenRequest req =
	    COUNTERSIGN__V1__DISABLE_TOKEN_REQUEST__INIT;
	Countersign__V1__DisableTokenReply *rep = NULL;
	struct admin                       *a   = ctx;
	int                                 rv;

	if (admin_cli_one_opt_done(a, cmd, argc, argv, "name", 0, &req.name,
	    &rv) ||
	    (rv = admin_cli_call(a, "DisableToken", &req, &rep)) !=
	    ADMIN_EXIT_OK) {
		goto out;
	}
	if (a->cli.json) {
		struct cs_json j;
		cs_json_init(&j, stdout);
		cs_json_open(&j, NULL);
		cs_json_str(&j, "name", req.name);
		cs_json_u64(&j, "disabled", rep->disabled);
		cs_json_close(&j);
		putchar('\n');
	} else {
		printf("token \"%s\" disabled (%u token%s): bearer use ends "
		    "now, console sessions at their next request\n", req.name,
		    rep->disabled, rep->disabled == 1 ? "" : "s");
	}
out:
	admin_cli_free(rep);
	return rv;
}

int
admin_cmd_token_list(void *ctx, const struct cs_cli_cmd *cmd, int argc,
    char **argv)
{
	Countersign__V1__ListTokensRequest req =
	    COUNTERSIGN__V1__LIST_TOKENS_REQUEST__INIT;
	Countersign__V1__ListTokensReply *rep = NULL;
	struct admin                     *a   = ctx;
	char                              d[ADMIN_DATE_LEN];
	int                               rv;

	if (admin_cli_args_done(a, cmd, argc, argv, "h", 0, &rv) ||
	    (rv = admin_cli_call(a, "ListTokens", &req, &rep)) !=
	    ADMIN_EXIT_OK) {
		goto out;
	}
	if (a->cli.json) {
		struct cs_json j;
		admin_cli_list_begin(&j, "tokens");
		for (size_t i = 0; i < rep->n_tokens; i++) {
			const Countersign__V1__TokenInfo *t = rep->tokens[i];
			cs_json_open(&j, NULL);
			cs_json_str(&j, "name", t->name);
			cs_json_str(&j, "role", t->role);
			cs_json_u64(&j, "created_unix_s", t->created_unix_s);
			cs_json_bool(&j, "disabled", t->disabled);
			cs_json_close(&j);
		}
		admin_cli_list_end(&j);
		goto out;
	}
	printf("%-7s  %-10s  %-8s  %s\n", "ROLE", "CREATED", "STATE", "NAME");
	for (size_t i = 0; i < rep->n_tokens; i++) {
		const Countersign__V1__TokenInfo *t = rep->tokens[i];
		admin_date(t->created_unix_s, d);
		printf("%-7s  %-10s  %-8s  %s\n", t->role, d,
		    t->disabled ? "disabled" : "active", t->name);
	}
	if (rep->n_tokens == 0) {
		printf("(no tokens: make one with " ADMIN_PROG " token "
		    "create)\n");
	}
out:
	admin_cli_free(rep);
	return rv;
}
