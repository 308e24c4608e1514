// The dbus-next (npm) client of the migration matrix: calls the sdbus-c++ echo service and waits for
// its signal, then owns org.example.Next, exports Reverse(s) and calls it back through the bus.
// Prints one "key value" line per result; exits non-zero when the bus or a call fails.
'use strict';
const dbus = require('dbus-next');

class Reverser extends dbus.interface.Interface {
  Reverse(text) { return [...text].reverse().join(''); }
}
Reverser.configureMembers({ methods: { Reverse: { inSignature: 's', outSignature: 's' } } });

async function main() {
  const bus = dbus.sessionBus({ busAddress: process.env.DBUS_SESSION_BUS_ADDRESS });
  const echoObject = await bus.getProxyObject('org.example.Echo', '/org/example/Echo');
  const echo = echoObject.getInterface('org.example.Echo');
  const signalled = new Promise((resolve) => echo.once('Echoed', resolve));
  console.log('reply', await echo.Echo('via dbus-next'));
  const timeout = new Promise((resolve) => setTimeout(() => resolve('(none)'), 3000));
  console.log('signal', await Promise.race([signalled, timeout]));

  bus.export('/org/example/Next', new Reverser('org.example.Next'));
  const requested = await bus.requestName('org.example.Next', dbus.NameFlag.DO_NOT_QUEUE);
  console.log('request-name', requested);
  const nextObject = await bus.getProxyObject('org.example.Next', '/org/example/Next');
  console.log('reverse', await nextObject.getInterface('org.example.Next').Reverse('dbus-next'));

  // The proxy only has introspected methods; a raw call reaches the service's own error path.
  try {
    await bus.call(new dbus.Message({
      destination: 'org.example.Echo', path: '/org/example/Echo', interface: 'org.example.Echo',
      member: 'NoSuchMethod',
    }));
    console.log('unknown-method (no error)');
  } catch (error) {
    console.log('unknown-method', error.type);
  }
  bus.disconnect();
}

main().catch((error) => {
  console.log('error', error.type || error.message);
  process.exit(1);
});
