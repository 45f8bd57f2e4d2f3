// salesforce-pubsub-api-client (npm), unmodified, against `sluice sandbox`'s Pub/Sub API
// (gRPC over TLS). Run with `node --test` in this folder (scripts/compat does). The client
// subscribes, fetches the Avro schemas, decodes every event and expands the
// changedFields / nulledFields bitmaps itself; each test compares what it decoded with
// the writes made and with the sandbox's ground truth (`GET /sandbox/v1/truth/{Object}`).
//
// The client trusts only its bundled public CAs; the sandbox's CA is fresh at each start,
// so the client is told not to verify the server (`rejectUnauthorizedSsl: false`). The
// REST calls of the test itself do verify it.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { requestJson, startSandbox, stopSandbox } from './sandbox.mjs';
const API_VERSION = '62.0';
const TOPIC = '/data/AccountChangeEvent';
const KEEPALIVE_SECS = 1;

let proc;
let info;
let agent;
let token;
let PubSubApiClient;
const clients = [];

const call = (method, url, options) => requestJson(agent, method, url, options);
const rest = (method, tail, body) =>
  call(method, `${token.instance_url}/services/data/v${API_VERSION}${tail}`, { body, bearer: token.access_token });
const mutate = (...ops) => call('POST', `${info.instance_url}/sandbox/v1/mutations`, { body: { mutations: ops } });
const truthOf = async (obj, id) => (await call('GET', `${info.instance_url}/sandbox/v1/truth/${obj}`, { lines: true }))
  .find((r) => r.Id === id);

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

async function connect(overrides = {}) {
  const client = new PubSubApiClient({
    authType: 'user-supplied',
    accessToken: token.access_token,
    instanceUrl: token.instance_url,
    organizationId: token.id.split('/').at(-2),
    pubSubEndpoint: new URL(info.pubsub_url).host,
    rejectUnauthorizedSsl: false,
    ...overrides,
  }, quiet);
  await client.connect();
  clients.push(client);
  return client;
}

/**
 * Subscribes with `start(callback)` and resolves with what the callback saw once `until`
 * holds for the events so far (or rejects on an error or after 20 s).
 */
function collect(start, until) {
  return new Promise((resolve, reject) => {
    const seen = { events: [], keepalives: [], errors: [] };
    const timer = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(seen.events.map((e) => e.replayId))}`)), 20000);
    start((subscription, type, data) => {
      if (type === 'event') seen.events.push(data);
      // A keepalive carries no data: the client keeps its replay id in the subscription's info.
      else if (type === 'grpcKeepAlive') seen.keepalives.push(subscription.lastReplayId);
      else if (type === 'error') seen.errors.push(data);
      if (type === 'error' || until(seen)) {
        clearTimeout(timer);
        resolve(seen);
      }
    });
  });
}

const ofRecord = (id) => (e) => e.payload.ChangeEventHeader.recordIds.includes(id);

before(async () => {
  const knobs = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pubsub-knobs-')), 'knobs.toml');
  fs.writeFileSync(knobs, `[pubsub]\nkeepalive_secs = ${KEEPALIVE_SECS}\n`);
  ({ proc, info } = await startSandbox('pubsub', [
    '--records', 'Account=50,Contact=20,Invoice__c=20', '--seed', '11', '--knobs', knobs,
  ]));
  agent = new https.Agent({ ca: fs.readFileSync(info.ca_file), keepAlive: true });
  token = await call('POST', `${info.login_url}/services/oauth2/token`, {
    form: {
      grant_type: 'password', client_id: info.client_id, client_secret: info.client_secret,
      username: info.username, password: info.password,
    },
  });
  for (const k of ['https_proxy', 'http_proxy', 'HTTPS_PROXY', 'HTTP_PROXY', 'grpc_proxy']) delete process.env[k];
  ({ default: PubSubApiClient } = await import('salesforce-pubsub-api-client'));
});

after(async () => {
  for (const client of clients) client.close();
  await stopSandbox(proc);
  agent?.destroy();
});

describe('change events of Account', () => {
  let id;
  let events;

  before(async () => {
    const created = await rest('POST', '/sobjects/Account', {
      Name: 'Pub/Sub Ltd', Phone: '+1 555 0100', AnnualRevenue: 1250000, BillingCity: 'Lyon', Description: 'first',
    });
    id = created.id;
    await rest('PATCH', `/sobjects/Account/${id}`, { Name: 'Pub/Sub Renamed', Phone: null, BillingCity: 'Nantes' });
    await rest('DELETE', `/sobjects/Account/${id}`);
    await mutate({ op: 'undelete', object: 'Account', id });
    const client = await connect();
    const seen = await collect(
      (cb) => client.subscribeFromEarliestEvent(TOPIC, cb, 100),
      (s) => s.events.filter(ofRecord(id)).length >= 4,
    );
    assert.deepEqual(seen.errors, []);
    events = seen.events.filter(ofRecord(id));
  });

  test('create, update, delete and undelete arrive in order, one transaction each', () => {
    assert.deepEqual(events.map((e) => e.payload.ChangeEventHeader.changeType), ['CREATE', 'UPDATE', 'DELETE', 'UNDELETE']);
    for (const e of events) {
      const h = e.payload.ChangeEventHeader;
      assert.equal(h.entityName, 'Account');
      assert.deepEqual(h.recordIds, [id]);
      assert.equal(h.sequenceNumber, 1);
      assert.match(h.transactionKey, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.equal(h.commitUser, token.id.split('/').at(-1));
    }
    const replayIds = events.map((e) => e.replayId);
    assert.deepEqual([...replayIds].sort((a, b) => a - b), replayIds, 'replay ids increase');
    assert.equal(new Set(events.map((e) => e.payload.ChangeEventHeader.transactionKey)).size, 4);
  });

  test('the create carries the written values, and the record as the org stored it', async () => {
    const { payload } = events[0];
    assert.equal(payload.Name, 'Pub/Sub Ltd');
    assert.equal(payload.Phone, '+1 555 0100');
    assert.equal(payload.AnnualRevenue, 1250000);
    assert.equal(payload.Description, 'first');
    assert.equal(payload.BillingAddress.City, 'Lyon');
    assert.deepEqual(payload.ChangeEventHeader.changedFields, []);
    const created = payload.CreatedDate;
    assert.equal(typeof created, 'number');
    assert.equal(created, payload.ChangeEventHeader.commitTimestamp - (payload.ChangeEventHeader.commitTimestamp % 1000));
    assert.equal(payload.OwnerId, token.id.split('/').at(-1));
  });

  test('the update carries only what changed; the client expands the bitmaps to those fields', async () => {
    const { payload } = events[1];
    const h = payload.ChangeEventHeader;
    assert.equal(payload.Name, 'Pub/Sub Renamed');
    assert.equal(payload.Phone, null);
    assert.equal(payload.Description, null, 'an unchanged field is empty in an update');
    assert.equal(payload.BillingAddress.City, 'Nantes');
    for (const f of ['Name', 'Phone', 'LastModifiedDate', 'SystemModstamp', 'BillingAddress.City']) {
      assert.ok(h.changedFields.includes(f), `${f} not in changedFields ${JSON.stringify(h.changedFields)}`);
    }
    assert.ok(!h.changedFields.includes('Description'), JSON.stringify(h.changedFields));
    assert.deepEqual(h.nulledFields, ['Phone']);
    const truth = await truthOf('Account', id);
    assert.equal(truth.Name, payload.Name);
    assert.equal(truth.Phone, null);
    assert.equal(Date.parse(truth.LastModifiedDate.replace('+0000', 'Z')), events[3].payload.LastModifiedDate);
  });

  test('the delete carries the header only; the undelete the whole record again', async () => {
    const deleted = events[2].payload;
    assert.equal(deleted.Name, null);
    assert.deepEqual(deleted.ChangeEventHeader.changedFields, []);
    const undeleted = events[3].payload;
    const truth = await truthOf('Account', id);
    assert.equal(truth.IsDeleted, false);
    assert.equal(undeleted.Name, truth.Name);
    assert.equal(undeleted.AnnualRevenue, truth.AnnualRevenue);
    assert.equal(undeleted.BillingAddress.City, truth.BillingCity);
  });

  test('a replay from an event resumes right after it', async () => {
    const client = await connect();
    const seen = await collect(
      (cb) => client.subscribeFromReplayId(TOPIC, cb, 100, events[1].replayId),
      (s) => s.events.filter(ofRecord(id)).length >= 2,
    );
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(seen.events.filter(ofRecord(id)).map((e) => e.replayId), [events[2].replayId, events[3].replayId]);
  });
});

describe('subscriptions', () => {
  test('LATEST gets only changes made after it, on its own object\'s topic', async () => {
    const client = await connect();
    const contact = await rest('POST', '/sobjects/Contact', { LastName: 'Before' });
    const seen = collect(
      (cb) => client.subscribe(TOPIC, cb, 10),
      (s) => s.events.length >= 1,
    );
    // The subscription's position is taken when its first request arrives.
    await new Promise((r) => setTimeout(r, 1500));
    await rest('POST', '/sobjects/Contact', { LastName: 'After' });
    const account = await rest('POST', '/sobjects/Account', { Name: 'After Ltd' });
    const { events, errors } = await seen;
    assert.deepEqual(errors, []);
    assert.equal(events.length, 1);
    assert.deepEqual(events[0].payload.ChangeEventHeader.recordIds, [account.id]);
    assert.notEqual(contact.id, account.id);
  });

  test('/data/ChangeEvents carries every object, custom ones included', async () => {
    const client = await connect();
    const invoice = (await mutate({ op: 'insert', object: 'Invoice__c', count: 1 })).results[0];
    const contact = await rest('POST', '/sobjects/Contact', { LastName: 'Everywhere' });
    const seen = await collect(
      (cb) => client.subscribeFromEarliestEvent('/data/ChangeEvents', cb, 100),
      (s) => [invoice.id, contact.id].every((x) => s.events.some(ofRecord(x))),
    );
    assert.deepEqual(seen.errors, []);
    const names = new Set(seen.events.map((e) => e.payload.ChangeEventHeader.entityName));
    for (const n of ['Account', 'Contact', 'Invoice__c']) assert.ok(names.has(n), `${n} missing from ${[...names]}`);
  });

  test('an idle subscription gets keepalives carrying the latest replay id', async () => {
    const client = await connect();
    const seen = await collect(
      (cb) => client.subscribe('/data/Invoice__ChangeEvent', cb, 5),
      (s) => s.keepalives.length >= 2,
    );
    assert.deepEqual(seen.errors, []);
    assert.equal(seen.events.length, 0);
    for (const latest of seen.keepalives) assert.ok(latest > 0, String(latest));
  });

  test('a replay id the org never issued fails the subscription with the real error text', async () => {
    const client = await connect();
    const seen = await collect(
      (cb) => client.subscribeFromReplayId(TOPIC, cb, 10, 3),
      (s) => s.errors.length >= 1,
    );
    assert.match(String(seen.errors[0]?.message ?? seen.errors[0]), /replayid\.corrupted/);
  });

  test('a wrong access token is refused', async () => {
    const client = await connect({ accessToken: 'not-a-session' });
    const seen = await collect(
      (cb) => client.subscribe(TOPIC, cb, 1),
      (s) => s.errors.length >= 1,
    );
    assert.match(String(seen.errors[0]?.message ?? seen.errors[0]), /UNAUTHENTICATED|session/i);
  });
});
