// Dashboard entry: starts the live feed, mounts React, installs the test hook.

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '../styles/base.css';
import '../styles/dashboard.css';
import { App } from './App';
import { fleet } from './net/controller';
import { installTestHook } from './testHook';

fleet.start();
installTestHook();
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
