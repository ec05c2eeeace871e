import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PendingConsents } from '../../src/credentials/consent.js';
import { UpstreamAuthorizationRequired } from '../../src/credentials/errors.js';

const entry = { agent: 'alice', server: 'jira', codeVerifier: 'v'.repeat(43), authorizationUrl: 'https://idp.example.com/auth?state=x' };

describe('consent state', () => {
  it('is single use, bound to its agent and server, and expires', () => {
    const consents = new PendingConsents(600_000);
    const state = consents.newState();
    assert.equal(Buffer.from(state, 'base64url').length, 32);
    consents.add(state, entry, 1000);
    assert.equal(consents.current('alice', 'jira', 2000)?.codeVerifier, entry.codeVerifier);
    assert.equal(consents.current('bob', 'jira', 2000), undefined);
    assert.equal(consents.take(state, 2000)?.agent, 'alice');
    assert.equal(consents.take(state, 2000), undefined, 'a state was accepted twice');

    const late = consents.newState();
    consents.add(late, entry, 1000);
    assert.equal(consents.take(late, 1000 + 600_000), undefined, 'an expired state was accepted');
    assert.equal(consents.take('unknown', 1000), undefined);
  });

  it('becomes the spec\'s URLElicitationRequired only for a client that supports URL elicitation', () => {
    const error = new UpstreamAuthorizationRequired('jira', 'open the link', 'consent_required', 'https://idp.example.com/auth?x=1');
    assert.equal(error.errorBody().code, -32018);
    assert.equal(error.errorBody().data['consent_url'], 'https://idp.example.com/auth?x=1');
    const elicited = error.forClient(true).errorBody();
    assert.equal(elicited.code, -32042);
    assert.deepEqual((elicited.data['elicitations'] as Array<{ mode: string; url: string }>).map(({ mode, url }) => ({ mode, url })), [{ mode: 'url', url: 'https://idp.example.com/auth?x=1' }]);
    // Without a link there is nothing to elicit: the plain error says what to do.
    assert.equal(new UpstreamAuthorizationRequired('crm', 'sign in again', 'exchange_failed', undefined, true).errorBody().code, -32018);
  });
});
