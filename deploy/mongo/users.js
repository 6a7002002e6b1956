// One MongoDB user per Dealflow service, limited to its own database (readWrite there,
// nothing elsewhere): a service's credentials cannot read another's data.
//
// Idempotent: a user that exists gets its password and roles set again, so a rotated
// secret takes effect on the next run. Passwords come from the environment
// (MONGO_<SERVICE>_PASSWORD, from a Secret), never from this repository; a missing one
// stops the script. Run by mongosh as an administrator:
// - compose: mounted into /docker-entrypoint-initdb.d (runs when the data volume is new);
// - Kubernetes: the dealflow-mongo-users Job (its ConfigMap holds this file's text).
const services = (process.env.MONGO_SERVICE_USERS || "leads deals quotes support metrics notify webhooks")
  .split(/\s+/).filter(Boolean);
for (const service of services) {
  const password = process.env[`MONGO_${service.toUpperCase()}_PASSWORD`];
  if (!password) {
    throw new Error(`MONGO_${service.toUpperCase()}_PASSWORD is not set`);
  }
  const database = db.getSiblingDB(service);
  const roles = [{ role: "readWrite", db: service }];
  if (database.getUser(service)) {
    database.updateUser(service, { pwd: password, roles: roles });
  } else {
    database.createUser({ user: service, pwd: password, roles: roles });
  }
  print(`mongo: user ${service} limited to database ${service}`);
}
