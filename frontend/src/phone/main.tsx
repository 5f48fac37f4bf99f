// Phone teleop entry: starts polling and the teleop socket, mounts React.

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '../styles/base.css';
import '../styles/phone.css';
import { client, PhoneApp } from './PhoneApp';
import { startPolling } from './phoneData';

startPolling();
client.start();
(window as unknown as { __phone: unknown }).__phone = { client };
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <PhoneApp />
  </StrictMode>,
);
