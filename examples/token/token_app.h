/* A token ledger as a replicated application (bft_app.h): accounts with balances, tokens minted
 * by an administrator client, transfers with a balance check, and the invariant that the total
 * supply equals the sum of all balances. Operations are text, so any client can send them:
 *   mint ACCOUNT AMOUNT     administrator only (a client index of the cluster file)
 *   transfer TO AMOUNT      from the sender's own account, named c<its client index>
 *   balance ACCOUNT         ordered read
 * Queries (stale reads): "balance ACCOUNT", "supply" -> "supply=S accounts=N".
 * The same application in Python is examples/token/token_app.py; both compute the same digest. */
#ifndef TOKEN_APP_H
#define TOKEN_APP_H

#include "bft_app.h"

enum token_status { TOKEN_OK = 0, TOKEN_INSUFFICIENT = 1, TOKEN_NOT_ADMIN = 2, TOKEN_BAD_OP = 3, TOKEN_OVERFLOW = 4 };

/* A new, empty ledger whose administrator is cluster-file client `admin`. */
int token_app_new(bft_app *app, uint32_t admin);
void token_app_free(bft_app *app);

#endif
