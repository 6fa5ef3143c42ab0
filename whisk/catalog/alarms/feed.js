// The whisk controller answers invocations of /whisk.system/alarms/alarm, /once and /interval itself (the feed
// protocol's CREATE, READ, UPDATE, DELETE, PAUSE and UNPAUSE; docs/catalog.md). This code runs only in a copy of
// the action made elsewhere, which no controller serves.
function main() {
  return { error: 'This copy of an alarms feed is not served by the whisk controller; use /whisk.system/alarms.' }
}
