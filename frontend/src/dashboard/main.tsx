// Dashboard entry: asks the server about sign-in (then the live feed starts), mounts React, installs the test hook.

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '../styles/base.css';
import '../styles/dashboard.css';
import { App } from './App';
import { boot } from './session';
import { installTestHook } from './testHook';

void boot();
installTestHook();
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
