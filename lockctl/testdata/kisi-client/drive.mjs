// Drives lockctl through Kisi's official JavaScript client, unchanged:
// users, members, guests, roles, role_assignments, invites, shares,
// events/types and an unlock
// with a guest's access key. kisiclient_test.go starts lockctl and runs
// this with KISI_BASE_URL, KISI_API_KEY, GROUP_ID, LOCK_ID and NOW set.
// Any failed expectation throws, and the process exits non-zero.
import assert from 'node:assert/strict';
import Kisi from 'kisi-client';

const env = process.env;
const base = env.KISI_BASE_URL.replace(/\/?$/, '/');
const groupId = Number(env.GROUP_ID);
const lockId = Number(env.LOCK_ID);
const now = new Date(env.NOW);
const at = minutes => new Date(now.getTime() + minutes * 60000).toISOString().replace('.000Z', 'Z');

const kisi = new Kisi({ baseURL: base });
kisi.setLoginSecret(env.KISI_API_KEY);

async function rejects(promise, status) {
  try {
    await promise;
  } catch (err) {
    assert.equal(err.status, status, `status ${err.status}, want ${status}`);
    return err;
  }
  throw new Error(`expected a ${status}`);
}

// roles
const roles = await kisi.get('roles');
const basic = roles.data.find(r => r.id === 'group_basic');
assert.equal(basic.appliesTo, 'Group');
assert.equal(basic.permissions.locksUnlock, true);
assert.ok(roles.data.some(r => r.id === 'group_manager'));

// users
const user = await kisi.post('users', { user: { email: 'ada@example.com', name: 'Ada Lovelace', accessEnabled: true } });
assert.equal(user.resourceType, 'User');
const found = await kisi.get('users', { email: 'ada@example.com' });
assert.equal(found.pagination.count, 1);
assert.equal(found.data[0].id, user.id);
await kisi.put(`users/${user.id}`, { user: { name: 'Ada King', notes: 'Envoy visitor' } });
assert.equal((await kisi.get(`users/${user.id}`)).name, 'Ada King');
await rejects(kisi.post('users', { user: { name: 'No email' } }), 422);
const members = await kisi.get('members', { query: 'ada' });
assert.deepEqual(members.data.map(m => m.userId), [user.id]);

// event types
const types = await kisi.get('events/types');
for (const t of ['role_assignment.create', 'guest.create', 'invite.create', 'user.create']) {
  assert.ok(types.includes(t), `events/types lists ${t}`);
}

// guests
const guest = await kisi.post('guests', { guest: { name: 'Grace Hopper (Envoy Guest)', phoneNumber: '+12125550123' } });
assert.equal(guest.phoneNumber, '+12125550123');
const guests = await kisi.get('guests', { query: 'grace' });
assert.deepEqual(guests.data.map(g => g.id), [guest.id]);
const bad = await rejects(kisi.post('guests', { guest: { name: 'X', phoneNumber: '+4930123456' } }), 422);
assert.ok(bad.reason.phone_number, 'a 422 names phone_number');
await rejects(kisi.post('guests', { guest: {} }), 422);

// role assignments
const ra = await kisi.post('role_assignments', {
  roleAssignment: {
    assigneeType: 'User', assigneeId: user.id, appliesToType: 'Group', appliesToId: groupId,
    roleId: 'group_basic', validFrom: at(0), validUntil: at(60)
  }
});
assert.equal(ra.resourceType, 'RoleAssignment');
assert.equal(ra.validUntil, at(60));
assert.equal(ra.appliesTo.id, groupId);
const mine = await kisi.get('role_assignments', { assigneeType: 'User', assigneeId: user.id });
assert.deepEqual(mine.data.map(r => r.id), [ra.id]);
await rejects(kisi.post('role_assignments', {
  roleAssignment: { assigneeType: 'User', assigneeId: user.id, appliesToType: 'Group', appliesToId: groupId, roleId: 'group_manager' }
}), 422);
await kisi.put(`role_assignments/${ra.id}`, { roleAssignment: { validUntil: at(120) } });
assert.equal((await kisi.get(`role_assignments/${ra.id}`)).validUntil, at(120));
await kisi.delete(`role_assignments/${ra.id}`);
await rejects(kisi.get(`role_assignments/${ra.id}`), 404);

// invites: a guest, a time-boxed group role and an access key in one call
const invite = await kisi.post('invites', {
  invite: {
    invitesToType: 'Group', invitesToId: groupId, notify: false,
    invitee: { resourceType: 'Guest', name: 'Hedy Lamarr (Envoy Guest)', email: null, phoneNumber: null },
    roleAssignment: { roleId: 'group_basic', validFrom: at(0), validUntil: at(60) },
    accessKey: { linkEnabled: true, qrCodeEnabled: false }
  }
});
assert.equal(invite.resourceType, 'Invite');
assert.equal(invite.inviteeType, 'Guest');
assert.equal(invite.roleAssignment.validUntil, at(60));
assert.equal(invite.accessKey.resourceType, 'AccessKey');

const holder = new Kisi({ baseURL: base, headers: { Authorization: `KISI-ACCESS-KEY ${invite.accessKey.secret}` } });
const doors = await holder.get('locks');
assert.ok(doors.data.some(l => l.id === lockId));
assert.deepEqual(await holder.post(`locks/${lockId}/unlock`), { message: 'Unlocked!' });

// shares (deprecated, used by the Envoy–Kisi app)
const share = await kisi.post('shares', { share: { email: 'bob@example.com', groupId, validFrom: at(0), validUntil: at(30) } });
assert.equal(share.resourceType, 'Share');
assert.equal(share.roleId, 'basic');
const shares = await kisi.get('shares', { groupId });
assert.deepEqual(shares.data.map(s => s.id), [share.id]);
await kisi.put(`shares/${share.id}`, { share: { roleId: 'manager', validUntil: at(90) } });
const changed = await kisi.get(`shares/${share.id}`);
assert.equal(changed.roleId, 'manager');
assert.equal(changed.validUntil, at(90));
await kisi.delete(`shares/${share.id}`);

await kisi.delete(`guests/${guest.id}`);
await kisi.delete(`users/${user.id}`);
console.log(JSON.stringify({ ok: true, invite: invite.id }));
