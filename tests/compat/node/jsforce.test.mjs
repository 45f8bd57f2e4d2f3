// jsforce (npm), unmodified, against `sluice sandbox` over HTTPS. Run with `node --test`
// in this folder (scripts/compat does). Every test compares what jsforce hands back
// with the sandbox's ground truth (`GET /sandbox/v1/truth/{Object}`).
//
// The sandbox makes a fresh CA at start, after node is running, so NODE_EXTRA_CA_CERTS
// cannot name it; instead the CA goes into the https agent jsforce's HTTP stack uses
// (node-fetch → https.globalAgent up to jsforce 3.10.16; an undici dispatcher after).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';

import { requestJson, startSandbox, stopSandbox } from './sandbox.mjs';
const API_VERSION = '62.0';
// Enough rows that REST (2,000 a page, or 200 with Sforce-Query-Options) needs several pages.
const RECORDS = 'Account=1000,Contact=300,Opportunity=300,Lead=100,Case=100,User=20,Invoice__c=4500';

const DATETIME_REST = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$/;
const DATETIME_CSV = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/;
const ID18 = /^[0-9A-Za-z]{18}$/;
const NUMERIC = new Set(['int', 'long', 'double', 'currency', 'percent']);
const NOT_IN_BULK = new Set(['address', 'location', 'base64']);

let proc;
let info;
let agent;
let jsforce;
let conn;
let userId;

/** A JSON (or NDJSON, `lines: true`) request to the sandbox over the trusted agent. */
const call = (method, url, options) => requestJson(agent, method, url, options);

const truth = (obj) => call('GET', `${info.instance_url}/sandbox/v1/truth/${obj}`, { lines: true });
const mutate = (...ops) => call('POST', `${info.instance_url}/sandbox/v1/mutations`, { body: { mutations: ops } });

function byId(rows) {
  const m = new Map(rows.map((r) => [r.Id, r]));
  assert.equal(m.size, rows.length, 'duplicate Ids');
  return m;
}

function plain(rec) {
  const { attributes, ...rest } = rec;
  return rest;
}

/** Blob fields read as a URL under the request's version; the truth uses the newest. */
function atRequestVersion(v) {
  return typeof v === 'string' && v.startsWith('/services/data/v66.0/sobjects/')
    ? v.replace('/v66.0/', `/v${API_VERSION}/`)
    : v;
}

function assertRecordsEqualTruth(records, truthById, obj, fields) {
  for (const rec of records) {
    assert.equal(rec.attributes.type, obj);
    assert.ok(rec.attributes.url.endsWith(`/sobjects/${obj}/${rec.Id}`), rec.attributes.url);
    const got = plain(rec);
    assert.deepEqual(Object.keys(got), fields, 'record keys are not the SELECT list in order');
    const want = Object.fromEntries(fields.map((f) => [f, atRequestVersion(truthById.get(rec.Id)[f])]));
    assert.deepEqual(got, want, `record ${rec.Id} differs from the truth`);
  }
}

function assertExercisesTrickyText(rows, fields) {
  const texts = rows.flatMap((r) => fields.map((f) => r[f]).filter((v) => typeof v === 'string'));
  for (const needle of ['\n', '"', ',']) {
    assert.ok(texts.some((t) => t.includes(needle)), `no value with ${JSON.stringify(needle)} among the rows`);
  }
  assert.ok(texts.some((t) => /[^\x00-\x7f]/.test(t)), 'no non-ASCII value among the rows');
}

/** Counts the REST calls jsforce makes, by URL. */
function recordRequests() {
  const urls = [];
  const original = conn.request;
  conn.request = function (req, options) {
    urls.push(typeof req === 'string' ? req : req.url);
    return original.call(this, req, options);
  };
  return { urls, stop: () => { conn.request = original; } };
}

async function fieldTypes(obj) {
  const d = await conn.sobject(obj).describe();
  return new Map(d.fields.map((f) => [f.name, f.type]));
}

function csvText(value, type) {
  if (value === null) return '';
  if (type === 'boolean') return value ? 'true' : 'false';
  if (type === 'datetime') {
    assert.match(value, DATETIME_REST);
    return value.replace(/\+0000$/, 'Z');
  }
  return String(value);
}

function assertCsvRowEqualsTruth(row, truthRow, types) {
  for (const [name, text] of Object.entries(row)) {
    const type = types.get(name);
    const want = truthRow[name];
    // jsforce's CSV parser hands back strings; an empty field may come back as '' or null.
    const got = text ?? '';
    if (NUMERIC.has(type) && want !== null) {
      assert.ok(got !== '' && Number(got) === want, `${truthRow.Id}.${name}: ${got} != ${want}`);
      if (type === 'int' || type === 'long') assert.equal(got, String(want), `${truthRow.Id}.${name}`);
    } else {
      assert.equal(got, csvText(want, type), `${truthRow.Id}.${name}`);
    }
    if (type === 'datetime' && got) assert.match(got, DATETIME_CSV);
  }
}

before(async () => {
  ({ proc, info } = await startSandbox('jsforce', ['--records', RECORDS, '--seed', '7']));

  const ca = fs.readFileSync(info.ca_file);
  agent = new https.Agent({ ca, keepAlive: true });
  https.globalAgent = agent;
  // jsforce reads proxy settings when it loads; the sandbox is on loopback.
  for (const k of ['https_proxy', 'http_proxy', 'HTTPS_PROXY', 'HTTP_PROXY']) delete process.env[k];
  jsforce = (await import('jsforce')).default;
  const request = await import('jsforce/lib/request.js');
  const setDispatcher = request.setDispatcher ?? request.default?.setDispatcher;
  if (setDispatcher) {
    const { Agent } = await import('undici');
    setDispatcher(new Agent({ connect: { ca, allowH2: false } }));
  }

  // A living org: rows inserted, updated and deleted before any client reads it.
  await mutate(
    { op: 'churn', object: 'Account', inserts: 20, updates: 30, deletes: 15 },
    { op: 'churn', object: 'Invoice__c', inserts: 40, updates: 60, deletes: 30 },
  );
  const oauth2 = new jsforce.OAuth2({
    loginUrl: info.login_url, clientId: info.client_id, clientSecret: info.client_secret,
  });
  const token = await oauth2.authenticate(info.username, info.password);
  userId = token.id.split('/').pop();
  conn = new jsforce.Connection({ instanceUrl: token.instance_url, accessToken: token.access_token, version: API_VERSION });
});

after(async () => {
  await stopSandbox(proc);
  agent?.destroy();
});

describe('REST query', () => {
  test('query autoFetch over 200-row pages equals the live truth; maxFetch stops early', async () => {
    const truthRows = await truth('Account');
    const fields = Object.keys(truthRows[0]);
    const live = byId(truthRows.filter((r) => !r.IsDeleted));
    assert.ok(live.size < truthRows.length, 'expected Accounts in the recycle bin');
    const soql = `SELECT ${fields.join(', ')} FROM Account`;
    const headers = { 'Sforce-Query-Options': 'batchSize=200' };

    const seen = recordRequests();
    const res = await conn.query(soql).run({ autoFetch: true, maxFetch: 100000, headers });
    seen.stop();
    const pages = Math.ceil(live.size / 200);
    assert.equal(seen.urls.filter((u) => u.includes('/query/01g')).length, pages - 1, seen.urls.join('\n'));
    assert.equal(res.totalSize, live.size);
    assert.equal(res.records.length, live.size);
    assert.deepEqual(new Set(res.records.map((r) => r.Id)), new Set(live.keys()));
    assert.ok(res.records.every((r) => r.IsDeleted === false));
    assertRecordsEqualTruth(res.records, live, 'Account', fields);
    assertExercisesTrickyText([...live.values()], fields);

    const partial = await conn.query(soql).run({ autoFetch: true, maxFetch: 450, headers });
    assert.equal(partial.records.length, 450);
    assert.deepEqual(partial.records.map((r) => r.Id), res.records.slice(0, 450).map((r) => r.Id));
  });

  test('queryAll (scanAll) autoFetch over 2,000-row pages equals the whole truth', async () => {
    const truthRows = await truth('Invoice__c');
    const fields = Object.keys(truthRows[0]);
    const all = byId(truthRows);
    const deleted = new Set(truthRows.filter((r) => r.IsDeleted).map((r) => r.Id));
    assert.ok(deleted.size > 0, 'expected Invoice__c rows in the recycle bin');

    const seen = recordRequests();
    const res = await conn
      .query(`SELECT ${fields.join(', ')} FROM Invoice__c`)
      .run({ autoFetch: true, maxFetch: 100000, scanAll: true });
    seen.stop();
    assert.match(seen.urls[0], /\/queryAll\?q=/);
    const more = seen.urls.filter((u) => /\/query(All)?\/01g/.test(u)).length;
    assert.ok(more >= 2 && more === Math.ceil(all.size / 2000) - 1, seen.urls.join('\n'));
    assert.equal(res.records.length, all.size);
    assert.deepEqual(new Set(res.records.filter((r) => r.IsDeleted).map((r) => r.Id)), deleted);
    assertRecordsEqualTruth(res.records, all, 'Invoice__c', fields);
    assertExercisesTrickyText(truthRows, fields);
  });
});

describe('Bulk API 2.0', () => {
  test('bulk2.query rows equal the live truth, value by value', async () => {
    const types = await fieldTypes('Invoice__c');
    const truthRows = await truth('Invoice__c');
    const fields = Object.keys(truthRows[0]).filter((f) => !NOT_IN_BULK.has(types.get(f)));
    const live = byId(truthRows.filter((r) => !r.IsDeleted));

    const stream = await conn.bulk2.query(`SELECT ${fields.join(', ')} FROM Invoice__c`, {
      pollInterval: 200, pollTimeout: 120000,
    });
    const rows = await stream.toArray();
    assert.equal(rows.length, live.size);
    assert.deepEqual(new Set(rows.map((r) => r.Id)), new Set(live.keys()));
    for (const row of rows) {
      assert.deepEqual(Object.keys(row), fields);
      assertCsvRowEqualsTruth(row, live.get(row.Id), types);
    }
    assertExercisesTrickyText([...live.values()], fields);
  });

  test('bulk2.query with scanAll includes the recycle bin', async () => {
    const types = await fieldTypes('Account');
    const truthRows = await truth('Account');
    const fields = Object.keys(truthRows[0]).filter((f) => !NOT_IN_BULK.has(types.get(f)));
    const all = byId(truthRows);

    const stream = await conn.bulk2.query(`SELECT ${fields.join(', ')} FROM Account`, {
      scanAll: true, pollInterval: 200, pollTimeout: 120000,
    });
    const rows = await stream.toArray();
    assert.deepEqual(rows.map((r) => r.Id).sort(), [...all.keys()].sort());
    assert.deepEqual(
      new Set(rows.filter((r) => r.IsDeleted === 'true').map((r) => r.Id)),
      new Set(truthRows.filter((r) => r.IsDeleted).map((r) => r.Id)),
    );
    for (const row of rows) assertCsvRowEqualsTruth(row, all.get(row.Id), types);
  });
});

describe('describe', () => {
  for (const obj of ['Account', 'Contact', 'Invoice__c']) {
    test(`sobject('${obj}').describe() fields are the truth's keys, with fitting types`, async () => {
      const d = await conn.sobject(obj).describe();
      const truthRows = await truth(obj);
      assert.equal(d.name, obj);
      assert.deepEqual(d.fields.map((f) => f.name), Object.keys(truthRows[0]));
      const global = await conn.describeGlobal();
      const prefixes = new Map(global.sobjects.map((s) => [s.name, s.keyPrefix]));
      for (const o of ['Account', 'Contact', 'Opportunity', 'Lead', 'Case', 'User', 'Invoice__c']) {
        assert.ok(prefixes.has(o), o);
      }
      const byName = new Map(d.fields.map((f) => [f.name, f]));
      assert.equal(byName.get('Id').type, 'id');
      assert.equal(byName.get('IsDeleted').type, 'boolean');
      assert.equal(byName.get('SystemModstamp').type, 'datetime');
      for (const row of truthRows) {
        for (const [name, v] of Object.entries(row)) {
          const f = byName.get(name);
          if (f.type === 'boolean') {
            assert.equal(typeof v, 'boolean', name);
          } else if (v === null) {
            assert.ok(f.nillable || f.calculated, `${name} is null but not nillable`);
          } else if (f.type === 'id') {
            assert.ok(ID18.test(v) && v.startsWith(d.keyPrefix), v);
          } else if (f.type === 'reference') {
            assert.ok(ID18.test(v) && f.referenceTo.some((t) => v.startsWith(prefixes.get(t))), `${name}=${v}`);
          } else if (f.type === 'int' || f.type === 'long') {
            assert.ok(Number.isInteger(v), `${name}=${v}`);
          } else if (NUMERIC.has(f.type)) {
            assert.equal(typeof v, 'number', name);
          } else if (f.type === 'datetime') {
            assert.match(v, DATETIME_REST);
          } else if (f.type === 'date') {
            assert.match(v, /^\d{4}-\d{2}-\d{2}$/);
          } else if (f.type === 'time') {
            assert.match(v, /^\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
          } else if (f.type === 'address' || f.type === 'location') {
            assert.equal(typeof v, 'object', name);
          } else {
            assert.equal(typeof v, 'string', name);
            if (f.length) assert.ok(v.length <= f.length, `${name} longer than ${f.length}`);
          }
        }
      }
    });
  }
});

describe('CRUD', () => {
  const SYSTEM = new Set(['LastModifiedDate', 'LastModifiedById', 'SystemModstamp', 'IsDeleted']);
  const truthRow = async (id) => {
    const rows = (await truth('Contact')).filter((r) => r.Id === id);
    assert.equal(rows.length, 1, `${id} is not exactly once in the truth`);
    return rows[0];
  };
  const same = (a, b, except) => {
    for (const k of Object.keys(a)) if (!except.has(k) && !SYSTEM.has(k)) assert.deepEqual(a[k], b[k], k);
  };

  test('create / retrieve / update / destroy one Contact reach the truth', async () => {
    const account = (await truth('Account')).find((r) => !r.IsDeleted);
    const payload = {
      FirstName: 'Zoë',
      LastName: 'O\'Brien, "Compat"',
      Email: 'zoe.obrien@compat.example.com',
      Birthdate: '1990-02-28',
      AccountId: account.Id,
      Description: 'First line, with a comma\nSecond "quoted" line\r\nThird line',
      DoNotCall: true,
      MailingLatitude: 47.60621,
    };
    const created = await conn.sobject('Contact').create(payload);
    assert.equal(created.success, true);
    assert.deepEqual(created.errors, []);
    assert.match(created.id, /^003/);
    const row = await truthRow(created.id);
    for (const [k, v] of Object.entries(payload)) assert.deepEqual(row[k], v, k);
    assert.equal(row.Name, 'Zoë O\'Brien, "Compat"');
    assert.equal(row.IsDeleted, false);
    assert.equal(row.OwnerId, userId);
    assert.equal(row.CreatedById, userId);
    assert.deepEqual(plain(await conn.sobject('Contact').retrieve(created.id)), row);

    const upd = await conn.sobject('Contact').update({
      Id: created.id, Title: 'Head of "Compat", EMEA', Description: null, DoNotCall: false,
    });
    assert.equal(upd.success, true);
    const updated = await truthRow(created.id);
    assert.equal(updated.Title, 'Head of "Compat", EMEA');
    assert.equal(updated.Description, null);
    assert.equal(updated.DoNotCall, false);
    assert.ok(updated.SystemModstamp >= row.SystemModstamp);
    same(row, updated, new Set(['Title', 'Description', 'DoNotCall']));

    const del = await conn.sobject('Contact').destroy(created.id);
    assert.equal(del.success, true);
    const gone = await truthRow(created.id);
    assert.equal(gone.IsDeleted, true);
    same(updated, gone, new Set());
    await assert.rejects(conn.sobject('Contact').retrieve(created.id), (e) => e.errorCode === 'ENTITY_IS_DELETED');
  });

  test('create / retrieve / update / destroy several Contacts (sObject Collections) reach the truth', async () => {
    const before = (await truth('Contact')).length;
    const recs = [
      { LastName: 'Collection, "One"', Email: 'one@compat.example.com', DoNotCall: true },
      { LastName: 'Collection Two', Description: 'multi\nline, "text"' },
      { LastName: 'Collection Three', Birthdate: '2001-12-31' },
    ];
    const created = await conn.sobject('Contact').create(recs);
    assert.equal(created.length, 3);
    assert.ok(created.every((c) => c.success && ID18.test(c.id)), JSON.stringify(created));
    const ids = created.map((c) => c.id);
    const rows = await Promise.all(ids.map(truthRow));
    rows.forEach((row, i) => {
      for (const [k, v] of Object.entries(recs[i])) assert.deepEqual(row[k], v, k);
      assert.equal(row.IsDeleted, false);
    });
    const fetched = await conn.sobject('Contact').retrieve(ids);
    assert.deepEqual(fetched.map(plain), rows);

    const updated = await conn.sobject('Contact').update(ids.map((Id, i) => ({ Id, Title: `Title ${i}`, Phone: null })));
    assert.deepEqual(updated.map((u) => [u.id, u.success]), ids.map((id) => [id, true]));
    const after = await Promise.all(ids.map(truthRow));
    after.forEach((row, i) => {
      assert.equal(row.Title, `Title ${i}`);
      same(rows[i], row, new Set(['Title', 'Phone']));
    });

    // allOrNone: one bad record (no LastName) and nothing is written.
    const rolledBack = await conn.sobject('Contact').create(
      [{ LastName: 'Never Written' }, { FirstName: 'No Last Name' }], { allOrNone: true },
    );
    assert.deepEqual(rolledBack.map((r) => r.success), [false, false]);
    assert.equal(rolledBack[1].errors[0].statusCode, 'REQUIRED_FIELD_MISSING');
    assert.equal(rolledBack[0].errors[0].statusCode, 'ALL_OR_NONE_OPERATION_ROLLED_BACK');
    assert.equal((await truth('Contact')).length, before + 3);

    const destroyed = await conn.sobject('Contact').destroy(ids);
    assert.deepEqual(destroyed.map((d) => [d.id, d.success]), ids.map((id) => [id, true]));
    for (const id of ids) assert.equal((await truthRow(id)).IsDeleted, true);
    const again = await conn.sobject('Contact').destroy(ids);
    assert.ok(again.every((d) => !d.success && d.errors[0].statusCode === 'ENTITY_IS_DELETED'), JSON.stringify(again));
  });
});
